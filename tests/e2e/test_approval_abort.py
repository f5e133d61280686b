"""Issue 15 §1-§2 end to end on the strict local cloud, through the operator's CLI: an update that asks for
approval is rejected (NOT_APPROVED, endpoint untouched), times out to its default, or is approved and deploys;
`guardrail abort` stops a canary update and a shadow test: the endpoint ends on a known config, no lock
outlives the execution, the shadow variant is gone and one ABORTED notification carries the reason and what
serves. Each run goes through S3 -> EventBridge -> Step Functions -> Lambda (IAM on every call) -> SNS.
Measured on a loaded 2-core machine: reject 14 s, timeout 21 s, abort mid-shadow 19 s (in CI); approve and
deploy 63 s, abort mid-canary 39 s, approve a shadow's promotion 152 s (slow: `make test-slow`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from guardrail import scenarios
from guardrail.cli import main
from guardrail.demo import Traffic, endpoint_view, execution_path, find_execution, run_scenario, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def update(version: str, strategy: str = "ALL_AT_ONCE", **deployment) -> scenarios.Scenario:
    return scenarios.get("successful-update").model_copy(update={
        "key": f"approval-{version}", "version": version, "model": "xgb-runnerup", "serves_after": version,
        "deployment": {"strategy": strategy, **deployment}, "traffic_rps": 10,
    })  # fmt: skip


def config(version: str) -> str:
    return f"{scenarios.MODEL_NAME}-{version}-cfg"


def start(target, scenario, models_dir) -> str:
    since = datetime.now(UTC)
    scenarios.stage(target.client("s3"), target.bucket, scenario, models_dir, target.model_prefix)
    return find_execution(target.client("stepfunctions"), target.state_machine_arn, scenario.key_in(target.model_prefix), since, 30)


def wait_until_entered(target, arn: str, state: str, timeout: float = 180.0) -> None:
    sfn = target.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while state not in execution_path(sfn, arn):
        assert time.monotonic() < deadline, f"{state} never entered: {execution_path(sfn, arn)}"
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", execution_path(sfn, arn)
        time.sleep(0.3)


def in_service(target, timeout: float = 180.0):
    sm = target.client("sagemaker")
    deadline = time.monotonic() + timeout
    while (view := endpoint_view(sm, target.endpoint_name)).status != "InService" and time.monotonic() < deadline:
        time.sleep(1)
    return view


def locks(cloud, target) -> list[dict]:
    items = target.client("dynamodb").scan(TableName=cloud.outputs["TableName"])["Items"]
    return [i for i in items if i["pk"]["S"].startswith("lock#")]


def about(alerts, arn: str, settle: float = 6.0) -> list:
    name = arn.rsplit(":", 1)[-1]
    return [a for a in alerts.poll(timeout=settle) if (a.payload or {}).get("execution") == name or name in a.message]


def cli(cloud, *args: str) -> int:
    return main([*args, "--workdir", str(cloud.workdir)])


def asked(alerts, arn: str, timeout: float = 120.0):
    """The approval request of this execution (SNS outcome attribute APPROVAL_REQUESTED)."""
    name = arn.rsplit(":", 1)[-1]
    return alerts.wait_for(lambda a: a.outcome == "APPROVAL_REQUESTED" and name in a.message, timeout=timeout)


@pytest.fixture(scope="module")
def deployed(target, models_dir, data, alerts):
    if endpoint_view(target.client("sagemaker"), target.endpoint_name).status != "InService":
        r = run_scenario(target, scenarios.get("first-deployment"), models_dir, data, alerts=alerts)
        assert r.problems == [], r.problems
    list(alerts.poll(timeout=2))


def test_rejected_update_is_not_approved_and_leaves_the_endpoint(deployed, cloud, target, models_dir, alerts, capsys):
    before = in_service(target).config
    arn = start(target, update("a1", approval={"before_update": True, "timeout_seconds": 300}), models_dir)
    request = asked(alerts, arn)
    name = arn.rsplit(":", 1)[-1]
    capsys.readouterr()
    assert cli(cloud, "status") == 0
    assert f"waiting for approval of the update: guardrail approve|reject {name}" in " ".join(capsys.readouterr().out.split())
    assert f"guardrail approve {name}" in request.message and "then it will reject by default" in request.message
    assert request.subject.startswith("Guardrail APPROVAL NEEDED: update ")
    assert cli(cloud, "reject", name, "--reason", "not during the sale") == 0
    doc = wait_for(target.client("stepfunctions"), arn, timeout=120)
    assert doc["outcome"] == "NOT_APPROVED", (doc.get("error"), execution_path(target.client("stepfunctions"), arn))
    [alert] = [a for a in about(alerts, arn) if a.outcome != "APPROVAL_REQUESTED"]
    assert alert.outcome == "NOT_APPROVED" and "Rejected by arn:aws:" in alert.message
    assert "not during the sale" in alert.message and alert.payload["details"]["approval"]["decided_by"].startswith("arn:aws:")
    assert "Deploy" not in execution_path(target.client("stepfunctions"), arn)
    assert in_service(target).config == before and locks(cloud, target) == []
    assert cli(cloud, "approve", name) == 1  # too late: the execution has ended


def test_unanswered_update_takes_the_default(deployed, cloud, target, models_dir, alerts):
    before = in_service(target).config
    started = time.monotonic()
    arn = start(target, update("a2", approval={"before_update": True, "timeout_seconds": 5}), models_dir)
    doc = wait_for(target.client("stepfunctions"), arn, timeout=120)
    assert doc["outcome"] == "NOT_APPROVED" and doc["approval"]["Error"] == "States.Timeout"
    assert time.monotonic() - started >= 5
    [alert] = [a for a in about(alerts, arn) if a.outcome != "APPROVAL_REQUESTED"]
    assert "Rejected by the approval timeout's default" in alert.message
    assert in_service(target).config == before and locks(cloud, target) == []


@pytest.mark.slow
def test_approved_update_deploys_and_names_the_approver(deployed, cloud, target, models_dir, data, alerts):
    arn = start(target, update("a3", approval={"before_update": True, "timeout_seconds": 300}), models_dir)
    asked(alerts, arn)
    with Traffic(target, data, 10):
        assert cli(cloud, "approve", arn, "--reason", "canary numbers look fine") == 0
        doc = wait_for(target.client("stepfunctions"), arn, timeout=300)
    assert doc["outcome"] == "DEPLOYED", (doc.get("error"), doc.get("watch"))
    assert doc["approval"]["decision"] == "APPROVED" and doc["approval"]["reason"] == "canary numbers look fine"
    [alert] = [a for a in about(alerts, arn) if a.outcome != "APPROVAL_REQUESTED"]
    assert "Approved by arn:aws:" in alert.message and "canary numbers look fine" in alert.message
    assert in_service(target).config == config("a3") and locks(cloud, target) == []


@pytest.mark.slow
def test_abort_mid_canary_ends_on_a_known_config(deployed, cloud, target, models_dir, data, alerts):
    before = in_service(target).config
    arn = start(target, update("a4", strategy="CANARY"), models_dir)
    with Traffic(target, data, 10):
        wait_until_entered(target, arn, "CheckDeployment")
        assert endpoint_view(target.client("sagemaker"), target.endpoint_name).status == "Updating"
        assert cli(cloud, "abort", target.endpoint_name, "--reason", "wrong training data") == 0  # by endpoint
        alert = alerts.wait_for(lambda a: (a.payload or {}).get("execution") == arn.rsplit(":", 1)[-1], timeout=60)
    described = target.client("stepfunctions").describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED" and described["error"] == "GuardrailAborted"
    assert alert.outcome == "ABORTED" and "wrong training data" in alert.message and "serves" in alert.message
    assert "aborted by arn:aws:" in alert.payload["cause"]
    assert in_service(target).config in (before, config("a4"))  # SageMaker finished or rolled back: a known config
    assert locks(cloud, target) == []
    assert [a.outcome for a in about(alerts, arn, settle=4)] == []  # one notification


def test_abort_mid_shadow_removes_the_shadow(deployed, cloud, target, models_dir, data, alerts):
    before = in_service(target).config
    shadow = scenarios.get("shadow-promote").model_copy(update={"key": "approval-a5", "version": "a5", "serves_after": None})
    arn = start(target, shadow, models_dir)
    with Traffic(target, data, 10):
        wait_until_entered(target, arn, "CheckShadowTest")
        assert endpoint_view(target.client("sagemaker"), target.endpoint_name).shadow  # the shadow variant serves
        assert cli(cloud, "abort", arn, "--reason", "experiment no longer needed") == 0
        alert = alerts.wait_for(lambda a: (a.payload or {}).get("execution") == arn.rsplit(":", 1)[-1], timeout=60)
    assert alert.outcome == "ABORTED" and "experiment no longer needed" in alert.message
    assert "shadow removed, production kept" in alert.message
    view = in_service(target)
    assert view.config == before and not view.shadow and locks(cloud, target) == []
    experiment = alert.payload["details"]["shadow"]["experiment_name"]
    status = target.client("sagemaker").describe_inference_experiment(Name=experiment)["Status"]
    assert status in ("Stopping", "Completed", "Cancelled")
    assert [a.outcome for a in about(alerts, arn, settle=4)] == []


@pytest.mark.slow
def test_approved_promotion_is_promoted(deployed, cloud, target, models_dir, data, alerts):
    gated = {**scenarios.SHADOW, "approval": {"before_promote": True, "timeout_seconds": 600}}
    shadow = scenarios.get("shadow-promote").model_copy(update={"key": "approval-a6", "version": "a6", "deployment": gated})
    arn = start(target, shadow, models_dir)
    with Traffic(target, data, 40):
        request = asked(alerts, arn, timeout=400)
        assert "The experiment's own schedule ends at" in request.message
        assert request.subject.startswith("Guardrail APPROVAL NEEDED: promote ")
        assert endpoint_view(target.client("sagemaker"), target.endpoint_name).shadow  # still mirrored while asked
        assert cli(cloud, "approve", arn.rsplit(":", 1)[-1], "--reason", "shadow numbers look fine") == 0
        doc = wait_for(target.client("stepfunctions"), arn, timeout=300)
    assert doc["outcome"] == "PROMOTED", (doc.get("error"), doc.get("shadow", {}).get("verdict"))
    [alert] = [a for a in about(alerts, arn) if a.outcome != "APPROVAL_REQUESTED"]
    assert "Approved by arn:aws:" in alert.message and "shadow numbers look fine" in alert.message
    assert not in_service(target).shadow and locks(cloud, target) == []
