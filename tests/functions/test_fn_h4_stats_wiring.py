"""Issue 13, what was left: the canary configuration refused when its verdict cannot decide, the canary's
sample-ratio check on the capacity share, production's own threshold, and the plan at the shadow test's start.
SageMaker calls go through botocore's Stubber (every request validated); CloudWatch is moto."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from fn_support import ENDPOINT, ENV, load_state

from functions import errors
from functions.adapters import sagemaker
from functions.config import settings_from
from functions.models import DeployInput
from functions.steps.deploy import deploy


@pytest.fixture
def sm() -> Stubber:
    with Stubber(sagemaker.client()) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _described(config: str = "old-cfg") -> dict:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    return {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": config,
        "ProductionVariants": [{"VariantName": "AllTraffic"}],
        "EndpointStatus": "InService",
        "CreationTime": now,
        "LastModifiedTime": now,
    }


# --- 1. a canary whose verdict cannot decide is refused before UpdateEndpoint ------------------------------
def test_deploy_refuses_a_canary_bake_too_short_for_the_verdict(sm) -> None:
    """60-s bake of 60-s periods: at most one period with both fleets, the verdict needs 2 (a variance)."""
    doc = load_state("deploy")
    inp = DeployInput.model_validate(doc)
    settings = settings_from({**ENV, "CANARY_VERDICT": "msprt", "WAIT_INTERVAL_SECONDS": "60",
                              "METRIC_PERIOD_SECONDS": "60"})  # fmt: skip
    sm.add_response("describe_endpoint", _described(), {"EndpointName": ENDPOINT})
    with pytest.raises(errors.InvalidTrigger) as exc:  # no update_endpoint queued: the Stubber would fail on one
        deploy(inp.upload, inp.alarms, settings)
    text = str(exc.value)
    assert "60-s" in text and "WaitIntervalSeconds" in text and "MetricPeriodSeconds" in text
    assert "1 period" in text and "2" in text and "120 s" in text  # the arithmetic and the fix


def test_deploy_lets_a_decidable_canary_or_the_alarms_only_method_through(sm) -> None:
    doc = load_state("deploy")
    inp = DeployInput.model_validate(doc)
    for env in ({"CANARY_VERDICT": "alarms-only", "WAIT_INTERVAL_SECONDS": "60", "METRIC_PERIOD_SECONDS": "60"},
                {"CANARY_VERDICT": "msprt", "WAIT_INTERVAL_SECONDS": "120", "METRIC_PERIOD_SECONDS": "60"}):
        settings = settings_from({**ENV, **env})
        sm.add_response("describe_endpoint", _described(), {"EndpointName": ENDPOINT})
        sm.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"})
        out = deploy(inp.upload, inp.alarms, settings)
        assert out.status.value == "IN_PROGRESS"


# --- 2. the canary's capacity share reaches the verdict (its sample-ratio check) ---------------------------
def test_capacity_share_of_the_canary_step() -> None:
    """k of the new fleet's n instances take k/n of the requests (the emulator's rule, AWS's '25 %' example);
    CAPACITY_PERCENT rounds down to whole instances, at least one. LINEAR has several shares: no single one."""
    from functions.steps.check_deployment import capacity_share
    from functions.steps.deploy import build_deployment_config

    def config(strategy: str, pct: int) -> dict:
        return build_deployment_config(strategy, canary_percent=pct, linear_step_percent=pct, wait_interval_seconds=300,
                                       termination_wait_seconds=60, max_execution_timeout_seconds=3600,
                                       alarm_names=["a"])  # fmt: skip

    assert capacity_share(config("CANARY", 25), 4) == 0.25
    assert capacity_share(config("CANARY", 25), 2) == 0.5 * 1  # floor(0.5) -> 1 instance of 2
    assert capacity_share(config("CANARY", 30), 10) == 0.3
    assert capacity_share(config("LINEAR", 25), 4) is None
    assert capacity_share(config("LINEAR", 25), 4, first_step=True) == 0.25  # LINEAR: the first step's share
    assert capacity_share(config("LINEAR", 30), 10, first_step=True) == 0.3
    assert capacity_share(config("ALL_AT_ONCE", 25), 4) is None
    assert capacity_share(None, 4) is None
    by_count = config("CANARY", 25)
    by_count["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"] = {"Type": "INSTANCE_COUNT",
                                                                                       "Value": 1}
    assert capacity_share(by_count, 3) == 1 / 3


def test_judge_canary_hands_the_capacity_share_to_the_verdict(monkeypatch) -> None:
    from datetime import UTC, datetime

    from functions.models import DeploymentMode, DeploymentState, DeploymentStatus
    from functions.steps import check_deployment as cd
    from functions.steps.deploy import build_deployment_config

    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        return None

    monkeypatch.setattr(cd, "canary_analysis", fake)
    config = build_deployment_config("CANARY", canary_percent=25, linear_step_percent=25, wait_interval_seconds=300,
                                     termination_wait_seconds=60, max_execution_timeout_seconds=3600,
                                     alarm_names=["a"])  # fmt: skip
    deployment = DeploymentState(
        mode=DeploymentMode.UPDATE, endpoint_name=ENDPOINT, target_config="new", previous_config="old",
        status=DeploymentStatus.IN_PROGRESS, previous_variant="AllTraffic", target_variant="AllTraffic",
        started_at=datetime(2026, 11, 23, 12, tzinfo=UTC), deployment_config=config,
    )  # fmt: skip
    cd.judge_canary(deployment, settings_from({**ENV, "INSTANCE_COUNT": "4"}), datetime(2026, 11, 23, 13, tzinfo=UTC))
    assert seen["capacity_share"] == 0.25 and seen["minimum_share"] is None
    linear = build_deployment_config("LINEAR", canary_percent=25, linear_step_percent=25, wait_interval_seconds=300,
                                     termination_wait_seconds=60, max_execution_timeout_seconds=3600,
                                     alarm_names=["a"])  # fmt: skip
    cd.judge_canary(deployment.model_copy(update={"deployment_config": linear}),
                    settings_from({**ENV, "INSTANCE_COUNT": "4"}), datetime(2026, 11, 23, 13, tzinfo=UTC))  # fmt: skip
    assert seen["capacity_share"] is None and seen["minimum_share"] == 0.25


# --- 3 + 4. at the shadow test's start: production's evaluation (its own threshold) and the plan -------------
def _start_with_history(sm, requests_per_second: float, duration: int | None = None):
    """start_shadow_test (msprt) on an endpoint whose production served `requests_per_second` in the hour
    before (CloudWatch: moto), production's model in deployed/<sha256>/ (DescribeModel: Stubber)."""
    from datetime import UTC, datetime, timedelta

    import boto3
    from botocore.stub import ANY

    from functions.models import StartShadowTestInput
    from functions.steps.shadow_test import start_shadow_test

    now = datetime.now(UTC).replace(microsecond=0)
    boto3.client("s3").create_bucket(Bucket="guardrail-models")
    cw = boto3.client("cloudwatch")
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]
    per_minute = requests_per_second * 60
    data = [{"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": now - timedelta(minutes=m),
             "StatisticValues": {"SampleCount": per_minute, "Sum": per_minute * 0.005, "Minimum": 0.0,
                                 "Maximum": 1.0}} for m in range(1, 60)]  # fmt: skip
    for i in range(0, len(data), 20):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[i : i + 20])
    upload = StartShadowTestInput.model_validate(load_state("start_shadow_test")).upload
    if duration:
        upload = upload.model_copy(update={"shadow": upload.shadow.model_copy(update={"duration_seconds": duration})})
    sm.add_response("describe_endpoint", {**_described("xgb-best-1-cfg"), "CreationTime": now, "LastModifiedTime": now})
    sm.add_response("describe_endpoint_config", {
        "EndpointConfigName": "xgb-best-1-cfg", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:ec/x",
        "CreationTime": now, "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "xgb-best-1",
                                                     "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]})
    sm.add_response("describe_model", {
        "ModelName": "xgb-best-1", "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/xgb-best-1",
        "CreationTime": now, "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
        "PrimaryContainer": {"Image": "img", "ModelDataUrl": "s3://guardrail-models/deployed/abc123/model.tar.gz"},
    }, {"ModelName": "xgb-best-1"})  # fmt: skip
    sm.add_response("create_inference_experiment", {"InferenceExperimentArn": "arn:exp"}, {
        "Name": ANY, "Type": "ShadowMode", "Schedule": ANY, "Description": ANY, "RoleArn": ANY, "EndpointName": ANY,
        "ModelVariants": ANY, "DataStorageConfig": ANY, "ShadowModeConfig": ANY})  # fmt: skip
    settings = settings_from({**ENV, "SHADOW_METHOD": "msprt"})
    return start_shadow_test(upload, settings, now=now)


def test_start_records_production_evaluation_beside_its_deployed_artifact(aws, sm) -> None:
    state = _start_with_history(sm, 10.0)
    assert state.production_evaluation_uri == "s3://guardrail-models/deployed/abc123/evaluation.json"


def test_start_plans_the_test_from_production_traffic_and_warns_when_it_cannot_decide(aws, sm) -> None:
    """120 s of 60-s periods at 10 req/s: two periods cannot bound the mean latency (the per-period t-test
    needs more), so the plan says so before the test starts, in the execution output."""
    state = _start_with_history(sm, 10.0)
    plan = state.plan
    assert plan is not None and abs(plan["production_rps"] - 10.0) < 0.5 and plan["duration_seconds"] == 120
    assert plan["decidable"] is False and plan["explanation"].startswith("WARNING: this test cannot decide")
    assert plan["p_inconclusive"] > 0.5


def test_start_plan_of_a_decidable_test(aws, sm) -> None:
    state = _start_with_history(sm, 100.0, duration=3600)
    assert state.plan is not None and state.plan["decidable"] is True
    assert 0 < state.plan["minutes_to_decision"] < 60 and "expected to be PROMOTED" in state.plan["explanation"]


def test_capture_evidence_scores_production_at_its_own_threshold(monkeypatch) -> None:
    """The paired comparison gets production's evaluation (threshold 0.3) beside the shadow's (0.5)."""
    from datetime import UTC, datetime

    from fn_support import evaluation

    from functions.evaluation import ModelEvaluation
    from functions.models import ShadowState
    from functions.stats.periods import Period
    from functions.stats.verdict import VariantSample, VerdictPolicy
    from functions.steps import data_checks, shadow_analysis

    def eval_with(threshold: float) -> ModelEvaluation:
        raw = evaluation()
        raw["metrics"]["threshold"] = threshold
        return ModelEvaluation.model_validate(raw)

    files = {"s3://b/shadow/evaluation.json": eval_with(0.5), "s3://b/deployed/abc/evaluation.json": eval_with(0.3)}
    monkeypatch.setattr(data_checks, "read_evaluation", lambda uri: files[uri])
    monkeypatch.setattr(data_checks, "capture_records", lambda *a, **k: iter(()))
    seen = {}
    real = shadow_analysis.assess

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(shadow_analysis, "assess", spy)
    shadow = ShadowState(
        status="RUNNING", experiment_name="x", endpoint_name=ENDPOINT, production_variant="AllTraffic",
        shadow_variant="s", shadow_model="m", sampling_percent=100, capture_uri="s3://b/capture",
        evaluation_uri="s3://b/shadow/evaluation.json", production_evaluation_uri="s3://b/deployed/abc/evaluation.json",
    )  # fmt: skip
    sample = VariantSample.from_periods("p", [Period(60.0 * i, 100, 0, 2e6, 100) for i in range(3)])
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    shadow_analysis._capture_evidence(shadow, now, now, settings_from(ENV), VerdictPolicy(), sample, sample)
    assert seen["evaluation"].metrics.threshold == 0.5
    assert seen["production_evaluation"] is not None and seen["production_evaluation"].metrics.threshold == 0.3


def test_the_plan_made_at_the_start_is_the_one_the_verdict_reports(monkeypatch) -> None:
    """No CloudWatch read of the hour before at every poll: the verdict carries the start's plan (and its
    warning in the reasons, so in the final notification)."""
    from datetime import UTC, datetime, timedelta

    from functions.models import ShadowState
    from functions.stats.periods import Period
    from functions.stats.plan import plan
    from functions.stats.verdict import VariantSample
    from functions.steps import shadow_analysis

    start = datetime(2026, 11, 23, 12, tzinfo=UTC)
    made = plan(production_rps=1.0, candidate_rps=1.0, duration_seconds=120, period_seconds=60)
    assert not made.decidable
    monkeypatch.setattr(shadow_analysis, "pre_test_plan", lambda *a, **k: pytest.fail("plan recomputed"))
    monkeypatch.setattr(shadow_analysis, "baseline_tail_threshold", lambda *a, **k: None)
    sample = VariantSample.from_periods("p", [Period(60.0 * i, 10, 0, 2e5, 10) for i in range(2)])
    monkeypatch.setattr(shadow_analysis, "variant_sample", lambda *a, **k: sample)
    shadow = ShadowState(
        status="RUNNING", experiment_name="x", endpoint_name=ENDPOINT, production_variant="AllTraffic",
        shadow_variant="s", shadow_model="m", sampling_percent=100, method="msprt", policy={},
        starts_at=start.isoformat(), ends_at=(start + timedelta(seconds=120)).isoformat(),
        plan=made.model_dump(mode="json"),
    )  # fmt: skip
    out = shadow_analysis.sequential_analysis(shadow, start, start + timedelta(seconds=60), settings_from(ENV),
                                              final=False)  # fmt: skip
    assert out.details["plan"] == made.model_dump(mode="json") and made.explanation in out.reasons


def test_the_plan_warning_survives_the_capture_evidence(monkeypatch) -> None:
    """At the end the capture's evidence rewrites the reasons: the start's warning must stay in them."""
    from datetime import UTC, datetime, timedelta

    from functions.models import ShadowState
    from functions.stats.evidence import assess
    from functions.stats.periods import Period
    from functions.stats.plan import plan
    from functions.stats.verdict import VariantSample
    from functions.steps import shadow_analysis

    start = datetime(2026, 11, 23, 12, tzinfo=UTC)
    made = plan(production_rps=1.0, candidate_rps=1.0, duration_seconds=120, period_seconds=60)
    monkeypatch.setattr(shadow_analysis, "baseline_tail_threshold", lambda *a, **k: None)
    sample = VariantSample.from_periods("p", [Period(60.0 * i, 10, 0, 2e5, 10) for i in range(2)])
    monkeypatch.setattr(shadow_analysis, "variant_sample", lambda *a, **k: sample)
    monkeypatch.setattr(shadow_analysis, "_capture_evidence",
                        lambda *a, **k: (assess(sample, sample, final=True), []))  # fmt: skip
    shadow = ShadowState(
        status="RUNNING", experiment_name="x", endpoint_name=ENDPOINT, production_variant="AllTraffic",
        shadow_variant="s", shadow_model="m", sampling_percent=100, method="msprt", policy={"min_requests": 10, "min_latency_samples": 10},
        starts_at=start.isoformat(), ends_at=(start + timedelta(seconds=120)).isoformat(),
        plan=made.model_dump(mode="json"), capture_uri="s3://b/capture",
    )  # fmt: skip
    out = shadow_analysis.sequential_analysis(shadow, start, start + timedelta(seconds=120), settings_from(ENV),
                                              final=True)  # fmt: skip
    assert "evidence" in out.details and made.explanation in out.reasons
