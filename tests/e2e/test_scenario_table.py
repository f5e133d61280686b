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
    assert opted_out == {"incompatible-model"}  # its 5XX alarm and rollback are the demo's point
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
