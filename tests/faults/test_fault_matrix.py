"""Issue 12 §8: every fault ends with the endpoint on a known config, no lock outliving its execution, and one
notification that says what happened (docs/reliability.md records the matrix). Faults are injected on demand in
the local cloud (local/faults.py through the emulator's /_guardrail/faults) or done as an operator would."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime

import pytest

from guardrail import scenarios
from guardrail.demo import Traffic, endpoint_view, execution_path, find_execution, run_scenario, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("faults"), pytest.mark.timeout(600)]


def update(version: str, model: str = "xgb-runnerup", **changes) -> scenarios.Scenario:
    return scenarios.get("successful-update").model_copy(update={
        "key": f"fault-{version}", "version": version, "model": model, "serves_after": version,
        "deployment": {"strategy": "ALL_AT_ONCE"}, "traffic_rps": 10, **changes,
    })  # fmt: skip


def config(version: str) -> str:
    return f"{scenarios.MODEL_NAME}-{version}-cfg"


def arm(cloud, spec: dict) -> dict:
    request = urllib.request.Request(cloud.env["AWS_ENDPOINT_URL_SAGEMAKER"] + "/_guardrail/faults",
                                     data=json.dumps(spec).encode(), method="POST")  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def locks(cloud, target) -> list[dict]:
    items = target.client("dynamodb").scan(TableName=cloud.outputs["TableName"])["Items"]
    return [i for i in items if i["pk"]["S"].startswith("lock#")]


def notified(alerts, execution_arn: str, settle: float = 8.0) -> list:
    """Every message about this execution (waits `settle` s for late duplicates)."""
    name = execution_arn.rsplit(":", 1)[-1]
    return [a for a in alerts.poll(timeout=settle) if (a.payload or {}).get("execution") == name]


def in_service(target, timeout: float = 120.0):
    sm = target.client("sagemaker")
    deadline = time.monotonic() + timeout
    while (view := endpoint_view(sm, target.endpoint_name)).status != "InService" and time.monotonic() < deadline:
        time.sleep(1)
    return view


def start(target, scenario, models_dir) -> str:
    since = datetime.now(UTC)
    scenarios.stage(target.client("s3"), target.bucket, scenario, models_dir, target.model_prefix)
    return find_execution(target.client("stepfunctions"), target.state_machine_arn, scenario.key_in(target.model_prefix), since, 30)


def wait_until_entered(target, arn: str, state: str, timeout: float = 120.0) -> None:
    sfn = target.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while state not in execution_path(sfn, arn):
        assert time.monotonic() < deadline, f"{state} never entered: {execution_path(sfn, arn)}"
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", execution_path(sfn, arn)
        time.sleep(0.3)


@pytest.fixture(scope="module")
def deployed(target, models_dir, data, alerts):
    if endpoint_view(target.client("sagemaker"), target.endpoint_name).status != "InService":
        r = run_scenario(target, scenarios.get("first-deployment"), models_dir, data, alerts=alerts)
        assert r.problems == [], r.problems
    list(alerts.poll(timeout=2))  # start each case with an empty inbox


# --- F09a: one CheckDeployment crash during a good update -------------------------------------------------
def test_a_crashed_deployment_poll_is_retried_and_the_update_followed_to_the_end(deployed, cloud, target, models_dir, data, alerts):
    arm(cloud, {"kill": "CheckDeployment", "count": 1})
    r = run_scenario(target, update("f1"), models_dir, data, alerts=alerts)
    assert r.actual == "DEPLOYED", (r.error, r.cause, r.path)
    assert arm(cloud, {"kill": "CheckDeployment", "count": 0})["injected"].get("kill:CheckDeployment") == 1
    assert in_service(target).config == config("f1") and locks(cloud, target) == []
    assert [a.outcome for a in notified(alerts, r.execution_arn, settle=4)] in ([], ["DEPLOYED"])  # run_scenario read it


# --- F09b + Notify: crashes after the side effect (lock deleted, message published) ------------------------
def test_crashes_after_release_and_after_publish_leave_no_lock_and_one_message(deployed, cloud, target, models_dir, data, alerts):
    arm(cloud, {"kill": "ReleaseLock", "count": 1})
    arm(cloud, {"kill": "Notify", "count": 1})
    arn = start(target, update("f2"), models_dir)
    with Traffic(target, data, 10):
        doc = wait_for(target.client("stepfunctions"), arn, timeout=240)
    assert doc["outcome"] == "DEPLOYED" and doc["release"]["released"] in (True, False) and "release_error" not in doc
    injected = arm(cloud, {"kill": "Notify", "count": 0})["injected"]
    assert injected.get("kill:ReleaseLock") == 1 and injected.get("kill:Notify") == 1
    assert locks(cloud, target) == []
    assert [a.outcome for a in notified(alerts, arn)] == ["DEPLOYED"]  # the retried Notify did not publish again
    assert in_service(target).config == config("f2")


# --- F09c: StopExecution during the update ------------------------------------------------------------
def test_a_stopped_execution_releases_its_lock_and_says_what_serves(deployed, cloud, target, models_dir, data, alerts):
    before = in_service(target).config
    arn = start(target, update("f3"), models_dir)
    sfn = target.client("stepfunctions")
    with Traffic(target, data, 10):
        wait_until_entered(target, arn, "CheckDeployment")
        sfn.stop_execution(executionArn=arn, cause="operator stopped it mid-update")
        alert = alerts.wait_for(lambda a: (a.payload or {}).get("execution") == arn.rsplit(":", 1)[-1], timeout=60)
    assert alert.outcome == "ABORTED"
    assert "lock was released" in alert.message and ("serves" in alert.message)
    assert locks(cloud, target) == []
    assert in_service(target).config in (before, config("f3"))  # SageMaker finished or rolled back: a known config
    assert [a.outcome for a in notified(alerts, arn, settle=4)] == []  # nothing more about it


# --- F10: a guardrail alarm deleted during the update of a failing model --------------------------------
def test_a_deleted_guardrail_alarm_never_ends_deployed(deployed, cloud, target, models_dir, data, alerts):
    before = in_service(target).config
    bad = scenarios.get("incompatible-model").model_copy(update={"key": "fault-f4", "version": "f4", "serves_after": None})
    arn = start(target, bad, models_dir)
    cw = target.client("cloudwatch")
    with Traffic(target, data, 20):
        wait_until_entered(target, arn, "Deploy")
        cw.delete_alarms(AlarmNames=_alarm_names(target, arn))
        done = wait_for(target.client("stepfunctions"), arn, timeout=240)
    assert done["outcome"] in ("ROLLED_BACK", "FAILED"), done.get("error")
    [alert] = notified(alerts, arn)
    assert alert.outcome == done["outcome"]
    assert in_service(target).config == before and locks(cloud, target) == []


def _alarm_names(target, arn: str) -> list[str]:
    """The rollback and watch alarms EnsureAlarms wrote for this execution."""
    sfn = target.client("stepfunctions")
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    for event in events:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "EnsureAlarms":
            alarms = json.loads(details["output"])["alarms"]
            return [*alarms["names"], *alarms.get("watch_names", [])]
    raise AssertionError("EnsureAlarms never exited")


# --- F08b: someone moves the endpoint during the post-deployment watch --------------------------------
def test_an_endpoint_moved_during_the_watch_ends_changed_externally(deployed, cloud, target, models_dir, data, alerts):
    before = in_service(target).config
    arn = start(target, update("f5"), models_dir)
    with Traffic(target, data, 10):
        wait_until_entered(target, arn, "WatchAfterDeployment")
        target.client("sagemaker").update_endpoint(EndpointName=target.endpoint_name, EndpointConfigName=before)
        doc = wait_for(target.client("stepfunctions"), arn, timeout=240)
    assert doc["outcome"] == "CHANGED_EXTERNALLY", (doc.get("error"), doc.get("watch"))
    [alert] = notified(alerts, arn)
    assert alert.outcome == "CHANGED_EXTERNALLY"
    assert in_service(target).config == before and locks(cloud, target) == []


# --- throttling of every AWS API the steps call --------------------------------------------------------
MOTO_APIS = [
    ("dynamodb", "PutItem"), ("dynamodb", "GetItem"), ("dynamodb", "DeleteItem"), ("sns", "Publish"),
    ("cloudwatch", "PutMetricAlarm"), ("cloudwatch", "DescribeAlarms"), ("cloudwatch", "DescribeAlarmHistory"),
    ("cloudwatch", "GetMetricData"),
]  # fmt: skip
SAGEMAKER_APIS = ["DescribeEndpoint", "DescribeEndpointConfig", "DescribeModel", "CreateModel", "CreateEndpointConfig", "UpdateEndpoint"]


def test_every_api_throttled_still_deploys(deployed, cloud, target, models_dir, data, alerts):
    # Once each: the SDK's standard retry mode (jittered exponential backoff) absorbs it in the adapter.
    for service, operation in MOTO_APIS:
        arm(cloud, {"service": service, "operation": operation, "count": 1})
    for operation in SAGEMAKER_APIS:
        arm(cloud, {"operation": operation, "count": 1})
    r = run_scenario(target, update("f6", timeout_seconds=240), models_dir, data, alerts=alerts)
    assert r.actual == "DEPLOYED", (r.error, r.cause, r.path)
    state = arm(cloud, {"service": "dynamodb", "operation": "PutItem", "count": 0})
    assert {f"{s}:{o}" for s, o in MOTO_APIS} <= set(state["injected"]), state
    assert in_service(target).config == config("f6") and locks(cloud, target) == []


# --- F04b: a deployed version overwritten with other bytes ---------------------------------------------
def test_overwriting_a_deployed_version_is_refused_and_the_model_keeps_its_bytes(deployed, cloud, target, models_dir, data, alerts):
    first = run_scenario(target, update("f7"), models_dir, data, alerts=alerts)
    assert first.actual == "DEPLOYED", (first.error, first.cause)
    sm = target.client("sagemaker")
    model = f"{scenarios.MODEL_NAME}-f7"
    url = sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"]
    assert "/deployed/" in url and "/models/" not in url
    arn = start(target, update("f7", model="xgb-best"), models_dir)  # same name/version, other bytes
    doc = wait_for(target.client("stepfunctions"), arn, timeout=240)
    assert doc["outcome"] == "FAILED" and doc["error"]["Error"] == "InvalidArtifact" and "immutable" in doc["error"]["Cause"]
    [alert] = notified(alerts, arn)
    assert alert.outcome == "FAILED"
    assert sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"] == url
    assert in_service(target).config == config("f7") and locks(cloud, target) == []
