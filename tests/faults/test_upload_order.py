"""Issue 12 §4 (F05): uploads for one endpoint deploy in the order S3 received them, and with `supersede: true` a
newer upload supersedes an older one still waiting its turn. Three good versions uploaded 5 s apart on the strict
local cloud; no traffic (the point is the order), so each upload accepts an unverified deployment explicitly."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from guardrail import scenarios
from guardrail.demo import endpoint_view, execution_path, find_execution, run_scenario, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("faults"), pytest.mark.timeout(900)]

MODELS = ("xgb-runnerup", "xgb-best", "xgb-runnerup")


def version(tag: str, model: str, **deployment) -> scenarios.Scenario:
    return scenarios.get("successful-update").model_copy(update={
        "key": f"order-{tag}", "version": tag, "model": model, "serves_after": tag, "traffic_rps": 0,
        "deployment": {"strategy": "ALL_AT_ONCE", "evidence_policy": "accept", **deployment},
    })  # fmt: skip


def config(tag: str) -> str:
    return f"{scenarios.MODEL_NAME}-{tag}-cfg"


def queue_left(cloud, target) -> list[dict]:
    """lock# items and queue tickets still in the table."""
    items = target.client("dynamodb").scan(TableName=cloud.outputs["TableName"])["Items"]
    left = [i for i in items if i["pk"]["S"].startswith("lock#")]
    left += [i for i in items if i["pk"]["S"].startswith("queue#") and json.loads(i["tickets"]["S"])]
    return left


def upload_three(target, models_dir, tags: tuple[str, ...], **deployment) -> tuple[list[str], list[dict]]:
    s3, sfn = target.client("s3"), target.client("stepfunctions")
    uploads = [version(tag, model, **deployment) for tag, model in zip(tags, MODELS, strict=True)]
    since = datetime.now(UTC)
    for i, upload in enumerate(uploads):
        if i:
            time.sleep(5)
        scenarios.stage(s3, target.bucket, upload, models_dir, target.model_prefix)
    arns = [find_execution(sfn, target.state_machine_arn, u.key_in(target.model_prefix), since, 30) for u in uploads]
    return arns, [wait_for(sfn, arn, timeout=600) for arn in arns]


@pytest.fixture(scope="module")
def deployed(target, models_dir, data, alerts):
    if endpoint_view(target.client("sagemaker"), target.endpoint_name).status != "InService":
        r = run_scenario(target, scenarios.get("first-deployment"), models_dir, data, alerts=alerts)
        assert r.problems == [], r.problems
    list(alerts.poll(timeout=2))


def test_three_uploads_deploy_in_upload_order(deployed, cloud, target, models_dir):
    arns, docs = upload_three(target, models_dir, ("q1", "q2", "q3"))
    sfn = target.client("stepfunctions")
    assert [d["outcome"] for d in docs] == ["DEPLOYED_UNVERIFIED"] * 3, [d.get("error") for d in docs]
    # One at a time, in upload order: each ends before the next one's deployment ends.
    stops = [sfn.describe_execution(executionArn=arn)["stopDate"] for arn in arns]
    assert stops == sorted(stops)
    assert all("WaitForTurn" in execution_path(sfn, arn) for arn in arns[1:])
    view = endpoint_view(target.client("sagemaker"), target.endpoint_name)
    assert view.status == "InService" and view.config == config("q3")
    assert queue_left(cloud, target) == []


def test_with_supersede_a_waiting_upload_gives_way_to_a_newer_one(deployed, cloud, target, models_dir, alerts):
    list(alerts.poll(timeout=1))
    arns, docs = upload_three(target, models_dir, ("s1", "s2", "s3"), supersede=True)
    assert [d["outcome"] for d in docs] == ["DEPLOYED_UNVERIFIED", "SUPERSEDED", "DEPLOYED_UNVERIFIED"], [
        d.get("error") for d in docs
    ]
    sfn = target.client("stepfunctions")
    middle = execution_path(sfn, arns[1])
    assert "QualityGate" not in middle and "Deploy" not in middle
    name = arns[1].rsplit(":", 1)[-1]
    [alert] = [a for a in alerts.poll(timeout=8) if (a.payload or {}).get("execution") == name]
    assert alert.outcome == "SUPERSEDED" and "/s3/model.tar.gz" in alert.message  # names the newer upload
    view = endpoint_view(target.client("sagemaker"), target.endpoint_name)
    assert view.status == "InService" and view.config == config("s3")
    assert queue_left(cloud, target) == []
