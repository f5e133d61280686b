"""quality_gate: pure decisions, and the full step on moto (S3 + SageMaker for the production model)."""

from __future__ import annotations

import json

import boto3
import pytest
from fn_support import BUCKET, ENDPOINT, IMAGE, ROLE, FakeContext, evaluation, load_state

from functions import errors
from functions.config import load_settings, settings_from
from functions.evaluation import ModelEvaluation
from functions.models import GateResult
from functions.steps.quality_gate import decide, serving_framework_version


def _eval(**overrides) -> ModelEvaluation:
    return ModelEvaluation.model_validate(evaluation(**overrides))


def _bias(di: float, dppl: float, facet: str = "age_group", **extra) -> dict:
    return {
        "facet": facet,
        "groups": [],
        "demographic_parity_difference": dppl,
        "demographic_parity_ratio": di,
        "disparate_impact": di,
        "difference_in_positive_proportions": dppl,
        "label_disparate_impact": 0.9,
        "label_difference_in_positive_proportions": 0.05,
        **extra,
    }


def test_good_model_passes() -> None:
    result = decide(_eval(), load_settings())
    assert result.passed and result.reasons == [] and result.serving_framework_version == "3.0-5"
    assert result.bias[0].passed


def test_auc_below_minimum() -> None:
    result = decide(_eval(metrics={"auc": 0.7}), load_settings())
    assert not result.passed and result.reasons == ["AUC 0.7000 is below the minimum 0.7500"]


def test_auc_worse_than_production_by_more_than_margin() -> None:
    settings = load_settings()
    production = _eval(metrics={"auc": 0.93})
    assert decide(_eval(metrics={"auc": 0.925}), settings, production).passed  # within 0.01
    worse = decide(_eval(metrics={"auc": 0.91}), settings, production, "prod-model")
    assert not worse.passed and "worse than production's 0.9300" in worse.reasons[0]
    assert worse.production_model == "prod-model" and worse.production_auc == 0.93


@pytest.mark.parametrize(
    ("di", "dppl", "expected"),
    [
        (0.9, 0.05, []),
        (0.7, 0.05, ["disparate impact"]),
        (0.9, 0.3, ["difference in positive proportions"]),
        (0.5, 0.4, ["disparate impact", "difference in positive proportions"]),
    ],
)
def test_bias_bounds(di: float, dppl: float, expected: list[str]) -> None:
    result = decide(_eval(bias=[_bias(di, dppl)]), load_settings())
    assert [r.split(" on ")[0] for r in result.reasons] == expected
    assert result.bias[0].passed is (not expected)


def test_only_configured_or_guarded_facets_are_enforced() -> None:
    biased = [_bias(0.9, 0.05, "age_group"), _bias(0.3, 0.5, "marital")]
    only_age = settings_from({"BIAS_FACETS": "age_group"})
    assert decide(_eval(bias=biased), only_age).passed
    missing = decide(_eval(bias=biased), settings_from({"BIAS_FACETS": "age_group,job"}))
    assert missing.reasons == ["no bias report for required facet(s): job"]
    assert not decide(_eval(bias=biased), settings_from({})).passed


def test_serving_container_must_match() -> None:
    assert (
        serving_framework_version("x.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1-cpu-py3")
        == "1.7-1"
    )
    assert serving_framework_version("my-image:latest") is None
    old_image = settings_from({"SERVING_IMAGE": "sagemaker-xgboost:1.7-1"})
    result = decide(_eval(), old_image)
    assert result.reasons == [
        "artifact built for container 3.0-5, serving image is 1.7-1",
        "xgboost 3.0.5 cannot be served by container 1.7-1",
    ]
    assert decide(_eval(), settings_from({})).passed  # no image configured: nothing to compare


@pytest.fixture
def world(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3, boto3.client("sagemaker")


def _deploy_production(s3, sm, auc: float) -> None:
    s3.put_object(
        Bucket=BUCKET,
        Key="models/xgb-best/1/evaluation.json",
        Body=json.dumps(evaluation(metrics={"auc": auc})),
    )
    sm.create_model(
        ModelName="xgb-best-1",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/xgb-best/1/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="xgb-best-1-cfg",
        ProductionVariants=[
            {
                "VariantName": "v-xgb-best-1",
                "ModelName": "xgb-best-1",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="xgb-best-1-cfg")


def _put_candidate(s3, doc: dict | str) -> dict:
    state = load_state("quality_gate")
    body = doc if isinstance(doc, str) else json.dumps(doc)
    s3.put_object(Bucket=BUCKET, Key=state["upload"]["evaluation_key"], Body=body)
    return state


def test_step_against_production(world) -> None:
    from functions.handlers.quality_gate import handler

    s3, sm = world
    _deploy_production(s3, sm, auc=0.94)
    state = _put_candidate(s3, evaluation(metrics={"auc": 0.935}))
    result = GateResult.model_validate(handler(state, FakeContext()))
    assert result.passed and result.production_model == "xgb-best-1" and result.production_auc == 0.94

    state = _put_candidate(s3, evaluation(metrics={"auc": 0.9}))
    with pytest.raises(errors.ModelRejected, match=r"worse than production's 0\.9400") as info:
        handler(state, FakeContext())
    assert info.value.reasons


def test_first_model_has_no_production_to_compare(world) -> None:
    from functions.handlers.quality_gate import handler

    s3, _ = world
    result = handler(_put_candidate(s3, evaluation()), FakeContext())
    assert result["passed"] and result["production_auc"] is None


def test_missing_or_corrupt_evaluation(world) -> None:
    from functions.handlers.quality_gate import handler

    s3, _ = world
    with pytest.raises(errors.ArtifactNotFound, match="evaluation"):
        handler(load_state("quality_gate"), FakeContext())
    with pytest.raises(errors.InvalidArtifact, match="not valid JSON"):
        handler(_put_candidate(s3, "{broken"), FakeContext())
    with pytest.raises(errors.InvalidArtifact, match="not a valid evaluation: metrics"):
        handler(_put_candidate(s3, {**evaluation(), "metrics": {"auc": 2}}), FakeContext())


# --- never ship a model of another data set or schema (issue 11 §2) -------------------------------------


def _other_dataset(**overrides) -> ModelEvaluation:
    doc = evaluation(**overrides)
    doc["dataset"] = {**doc["dataset"], "name": "employee-promotion", "label": "is_promoted"}
    doc["label"] = "is_promoted"
    return ModelEvaluation.model_validate(doc)


def test_model_of_another_data_set_is_rejected_even_with_a_better_auc() -> None:
    production = _eval(metrics={"auc": 0.80})
    result = decide(_other_dataset(metrics={"auc": 0.95}), load_settings(), production, "prod-model")
    assert not result.passed
    assert any("trained on data set 'employee-promotion'" in r and "'bank-marketing'" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (["age"], "1 feature(s), production's model takes 2"),
        (["age", "balance", "extra"], "3 feature(s), production's model takes 2"),
        (["balance", "age"], "feature order differs from production's at column 0: 'balance' vs 'age'"),
        (["age", "income"], "feature order differs from production's at column 1: 'income' vs 'balance'"),
    ],
)
def test_feature_schema_must_match_production(features: list[str], message: str) -> None:
    result = decide(_eval(features=features), load_settings(), _eval(), "prod-model")
    assert not result.passed and any(message in r for r in result.reasons), result.reasons


def test_guarded_facet_of_production_cannot_be_dropped() -> None:
    production = _eval()  # guards age_group
    result = decide(_eval(bias=[]), load_settings(), production, "prod-model")
    assert not result.passed
    assert result.reasons == ["production guards facet(s) age_group; the candidate has no bias report for them"]
    informational = _eval(bias=[_bias(0.9, 0.05, guarded=False)])
    assert decide(_eval(bias=[]), load_settings(), informational, "prod-model").passed


def test_production_evidence_that_vanished_stops_the_gate(world) -> None:
    """The endpoint serves a model whose evaluation.json is gone: the gate cannot compare, so it rejects."""
    from functions.handlers.quality_gate import handler

    s3, sm = world
    _deploy_production(s3, sm, auc=0.94)
    s3.delete_object(Bucket=BUCKET, Key="models/xgb-best/1/evaluation.json")
    with pytest.raises(errors.ModelRejected, match=r"production's evaluation\.json .* is missing"):
        handler(_put_candidate(s3, evaluation()), FakeContext())
