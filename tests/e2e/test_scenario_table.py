"""The scenario table itself (fast; no local cloud): coverage of DESIGN.md, staging order and content."""

import gzip
import json

import boto3
import pytest
from moto import mock_aws

from guardrail import scenarios

DESIGN_ROWS = {
    "first deployment", "successful update", "incompatible model", "slow model", "shadow promote",
    "shadow reject", "quality gate", "bad input",
}


def test_every_design_row_has_a_scenario_and_keys_are_unique():
    assert {s.row for s in scenarios.SCENARIOS} == DESIGN_ROWS
    assert len(scenarios.BY_KEY) == len(scenarios.SCENARIOS)
    assert len({s.version for s in scenarios.SCENARIOS}) == len(scenarios.SCENARIOS)
    # A model that must keep serving was deployed by an earlier scenario.
    deployed: set[str] = set()
    for s in scenarios.SCENARIOS:
        if s.endpoint_changes:
            deployed.add(s.version)
        assert s.serves_after is None or s.serves_after in deployed, s.key


def test_get_by_event_path_and_unknown_name():
    assert scenarios.get("events/slow-model.json").alarm == "latency"
    with pytest.raises(scenarios.ScenarioError, match="unknown scenario 'nope'"):
        scenarios.get("nope")


def _models(tmp_path):
    folder = tmp_path / "xgb-best"
    folder.mkdir()
    (folder / "evaluation.json").write_text(json.dumps({"auc": 0.8}))
    (folder / "model.tar.gz").write_bytes(b"tarball")
    return tmp_path


@mock_aws
def test_stage_uploads_evaluation_and_deployment_before_the_tarball(tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    scenario = scenarios.get("shadow-promote")
    head = scenarios.stage(s3, "models", scenario, _models(tmp_path))
    assert head["key"] == "models/bank-marketing/v5/model.tar.gz" and head["size"] == 7
    listed = {o["Key"]: o["LastModified"] for o in s3.list_objects_v2(Bucket="models")["Contents"]}
    assert set(listed) == {f"models/bank-marketing/v5/{n}" for n in scenarios.ARTIFACT_FILES}
    body = s3.get_object(Bucket="models", Key="models/bank-marketing/v5/deployment.json")["Body"].read()
    assert json.loads(body)["shadow"]["enabled"] is True
    assert list(scenarios.artifact_files(scenario, tmp_path))[-1] == "model.tar.gz"


def test_faulty_stagings(tmp_path):
    models = _models(tmp_path)
    missing = scenarios.artifact_files(scenarios.get("bad-input-missing-artifact"), models)
    assert "evaluation.json" not in missing and "model.tar.gz" in missing
    (models / "xgb-best" / "model.tar.gz").write_bytes(gzip.compress(b"x" * 1000))
    corrupt = scenarios.artifact_files(scenarios.get("bad-input-corrupt-artifact"), models)
    assert corrupt["model.tar.gz"][:2] != b"\x1f\x8b" and corrupt["evaluation.json"]
    with pytest.raises(scenarios.ScenarioError, match="train first"):
        scenarios.artifact_files(scenarios.get("slow-model"), models)


def test_events_are_eventbridge_object_created():
    event = scenarios.object_created_event("b", {"key": "models/x/v1/model.tar.gz", "etag": "e", "version-id": None})
    assert event["source"] == "aws.s3" and event["detail-type"] == "Object Created"
    assert event["detail"]["object"] == {"key": "models/x/v1/model.tar.gz", "etag": "e"}
    assert not scenarios.malformed_event("b")["detail"]["object"]["key"].startswith("models/")


def test_preflight_opt_out_only_where_the_demo_needs_the_broken_model_deployed():
    opted_out = {s.key for s in scenarios.SCENARIOS if (s.deployment or {}).get("preflight") is False}
    # their alarms and AWS's rollback are the demo's point: the 5XX alarm, the relative 4XX alarm
    assert opted_out == {"incompatible-model", "feature-mismatch-4xx"}
    caught = scenarios.get("preflight-catches-bad-artifact")
    assert caught.expected == "REJECTED" and not caught.endpoint_changes and caught.traffic_rps > 0


def test_truncated_model_staging_is_a_safe_whole_archive_with_half_a_model(tmp_path):
    import io
    import tarfile

    from functions.steps.parse_upload import check_tar_members
    from training.package import tarball

    folder = tmp_path / "xgb-runnerup"
    folder.mkdir()
    model = bytes(range(256)) * 40
    (folder / "evaluation.json").write_text("{}")
    (folder / "model.tar.gz").write_bytes(tarball({"xgboost-model": model}))
    files = scenarios.artifact_files(scenarios.get("preflight-catches-bad-artifact"), tmp_path)
    assert check_tar_members("staged", io.BytesIO(files["model.tar.gz"])) == ["xgboost-model"]
    with tarfile.open(fileobj=io.BytesIO(files["model.tar.gz"]), mode="r:gz") as tar:
        assert tar.extractfile("xgboost-model").read() == model[: len(model) // 2]
    assert json.loads(files["deployment.json"])["strategy"] == "CANARY"


def test_the_feature_mismatch_candidate_is_built_on_one_column_fewer(tmp_path):
    """feature-mismatch-4xx stages a booster trained here on the first n-1 columns of train.csv beside the
    runner-up's evaluation.json (n features): the container answers 400 to production's n-column rows."""
    import io
    import tarfile

    import numpy as np
    import xgboost as xgb

    models = tmp_path / "models"
    (models / "xgb-runnerup").mkdir(parents=True)
    (models / "xgb-runnerup" / "evaluation.json").write_text(json.dumps({"features": [f"f{i}" for i in range(6)]}))
    (models / "xgb-runnerup" / "model.tar.gz").write_bytes(b"the runner-up's tarball")
    data = tmp_path / "data" / "bank-marketing"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.integers(0, 2, 200), rng.normal(size=(200, 6))])
    np.savetxt(data / "train.csv", rows, delimiter=",", fmt="%g")
    (data / "holdout.csv").write_text("")
    scenario = scenarios.get("feature-mismatch-4xx")
    assert scenario.deployment["preflight"] is False and scenario.alarm == "client_error"
    files = scenarios.artifact_files(scenario, models)
    assert list(files) == ["evaluation.json", "deployment.json", "model.tar.gz"]
    assert json.loads(files["evaluation.json"])["features"] == [f"f{i}" for i in range(6)]
    with tarfile.open(fileobj=io.BytesIO(files["model.tar.gz"]), mode="r:gz") as tar:
        assert tar.getnames() == ["xgboost-model"]
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    assert booster.num_features() == 5
    assert scenarios.artifact_files(scenario, models)["model.tar.gz"] == files["model.tar.gz"]  # deterministic


def test_the_no_traffic_update_expects_the_evidence_rollback():
    s = scenarios.get("no-traffic-update")
    assert s.traffic_rps == 0 and s.needs_endpoint and not s.endpoint_changes
    assert s.expected == "ROLLED_BACK" and s.alarm is None and "no evidence" in (s.expected_reason or "")
    assert (s.deployment or {}).get("preflight") is not False  # nothing wrong with the model itself
