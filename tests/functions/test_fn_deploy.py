"""deploy / check_deployment / rollback / create_*: DeploymentConfig building (checked against botocore's
service model) and the SageMaker calls through botocore's Stubber, which validates every request."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber
from fn_support import ENDPOINT, FakeContext, load_state

from functions import errors
from functions.adapters import cloudwatch, sagemaker
from functions.config import load_settings
from functions.models import (
    DeployInput,
    DeploymentMode,
    DeploymentState,
    DeploymentStatus,
    Strategy,
    WatchState,
)
from functions.steps.check_deployment import classify
from functions.steps.deploy import build_deployment_config
from functions.steps.rollback import ROLLBACK_CONFIG

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
ALARMS = ["a-5xx", "a-latency"]


def _validate_update(config: dict) -> None:
    from botocore.validate import ParamValidator

    shape = boto3.client("sagemaker").meta.service_model.operation_model("UpdateEndpoint").input_shape
    report = ParamValidator().validate(
        {"EndpointName": "ep", "EndpointConfigName": "cfg", "DeploymentConfig": config}, shape
    )
    assert not report.has_errors(), report.generate_report()


def _config(strategy, **kw) -> dict:
    args = {
        "canary_percent": 10,
        "linear_step_percent": 20,
        "wait_interval_seconds": 60,
        "termination_wait_seconds": 30,
        "max_execution_timeout_seconds": 600,
        "alarm_names": ALARMS,
    } | kw
    return build_deployment_config(strategy, **args)


@pytest.mark.parametrize("strategy", [s for s in Strategy if s is not Strategy.ROLLING])  # test_fn_rolling.py
def test_deployment_config_is_valid_for_every_strategy(strategy: Strategy) -> None:
    config = _config(strategy)
    _validate_update(config)
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == strategy.value and routing["WaitIntervalInSeconds"] == 60
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": n} for n in ALARMS]}
    if strategy is Strategy.CANARY:
        assert routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    if strategy is Strategy.LINEAR:
        assert routing["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] >= 600


def test_timeout_covers_every_linear_step() -> None:
    config = _config("LINEAR", linear_step_percent=10, wait_interval_seconds=300)  # 10 bakes of 300 s
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] >= 10 * 300 + 30
    with pytest.raises(errors.InvalidTrigger, match="over SageMaker's 28800s maximum"):
        _config("LINEAR", linear_step_percent=10, wait_interval_seconds=3600)


def test_unknown_strategy_and_bad_alarm_count() -> None:
    with pytest.raises(errors.InvalidTrigger, match="unknown strategy 'BLUE_GREEN'"):
        _config("BLUE_GREEN")
    with pytest.raises(errors.InvalidTrigger, match="1-10 alarms"):
        _config("CANARY", alarm_names=[])
    _validate_update(ROLLBACK_CONFIG)


def _deployment(**kw) -> DeploymentState:
    base = {
        "mode": "UPDATE",
        "endpoint_name": ENDPOINT,
        "target_config": "new-cfg",
        "previous_config": "old-cfg",
        "status": "IN_PROGRESS",
    } | kw
    return DeploymentState.model_validate(base)


def _described(status: str, config: str, reason: str | None = None, pending: str | None = None) -> dict:
    out = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    if reason:
        out["FailureReason"] = reason
    if pending:
        out["PendingDeploymentSummary"] = {"EndpointConfigName": pending}
    return out


ROLLBACK_REASON = "One or more configured alarm for automatic rollback deployment is in ALARM state: [a-5xx]."


@pytest.mark.parametrize(
    ("deployment", "described", "expected"),
    [
        (_deployment(), _described("Updating", "old-cfg", pending="new-cfg"), ("IN_PROGRESS", None)),
        (_deployment(), _described("InService", "new-cfg"), ("SUCCEEDED", None)),
        (
            _deployment(),
            _described("InService", "old-cfg", ROLLBACK_REASON),
            ("ROLLED_BACK", ROLLBACK_REASON),
        ),
        # FailureReason left over from an earlier rollback is not news, but a succeeded update is a success:
        (
            _deployment(previous_failure_reason=ROLLBACK_REASON),
            _described("InService", "new-cfg", ROLLBACK_REASON),
            ("SUCCEEDED", None),
        ),
        # ...and an InService endpoint back on the old config is a rollback even when the reason is old.
        (
            _deployment(previous_failure_reason=ROLLBACK_REASON),
            _described("InService", "old-cfg", ROLLBACK_REASON),
            ("ROLLED_BACK", ROLLBACK_REASON),
        ),
        (
            _deployment(mode="CREATE", previous_config=None),
            _described("Creating", "new-cfg"),
            ("IN_PROGRESS", None),
        ),
        (
            _deployment(mode="CREATE", previous_config=None),
            _described("InService", "new-cfg"),
            ("SUCCEEDED", None),
        ),
        (_deployment(), _described("Failed", "old-cfg", "image not found"), ("FAILED", "image not found")),
        (
            _deployment(),
            _described("UpdateRollbackFailed", "old-cfg"),
            ("FAILED", "endpoint is UpdateRollbackFailed (no FailureReason given)"),
        ),
    ],
)
def test_classify(deployment, described, expected) -> None:
    status, reason = classify(deployment, described)
    assert (status.value, reason) == expected


def test_classify_unexpected_config_or_gone() -> None:
    with pytest.raises(errors.DeploymentFailed, match="neither the new config"):
        classify(_deployment(), _described("InService", "someone-elses-cfg"))
    with pytest.raises(errors.DeploymentFailed, match="no longer exists"):
        classify(_deployment(), None)


@pytest.fixture
def sm() -> Stubber:
    with Stubber(sagemaker.client()) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def cw() -> Stubber:
    with Stubber(cloudwatch.client()) as stub:
        yield stub


def _not_found(stub: Stubber, operation: str, message: str) -> None:
    stub.add_client_error(operation, service_error_code="ValidationException", service_message=message)


def test_first_deployment_creates_the_endpoint(sm) -> None:
    from functions.handlers.deploy import handler

    doc = load_state("deploy")
    target = doc["upload"]["names"]["endpoint_config"]
    _not_found(sm, "describe_endpoint", f'Could not find endpoint "{ENDPOINT}".')
    sm.add_response(
        "create_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"},
        {"EndpointName": ENDPOINT, "EndpointConfigName": target},
    )
    out = DeploymentState.model_validate(handler(doc, FakeContext()))
    assert out.mode is DeploymentMode.CREATE and out.status is DeploymentStatus.IN_PROGRESS
    assert out.previous_config is None and out.target_config == target


def test_update_sends_the_guarded_deployment_config(sm) -> None:
    from functions.handlers.deploy import handler

    doc = load_state("deploy")
    upload = DeployInput.model_validate(doc).upload
    target = upload.names.endpoint_config
    sm.add_response(
        "describe_endpoint", _described("InService", "old-cfg", ROLLBACK_REASON), {"EndpointName": ENDPOINT}
    )
    settings = load_settings()
    expected = build_deployment_config(
        "CANARY",
        canary_percent=25,
        linear_step_percent=25,
        wait_interval_seconds=settings.wait_interval_seconds,
        termination_wait_seconds=settings.termination_wait_seconds,
        max_execution_timeout_seconds=settings.max_execution_timeout_seconds,
        alarm_names=[upload.names.error_alarm, upload.names.latency_alarm],
    )
    sm.add_response(
        "update_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"},
        {"EndpointName": ENDPOINT, "EndpointConfigName": target, "DeploymentConfig": expected},
    )
    out = DeploymentState.model_validate(handler(doc, FakeContext()))
    assert out.mode is DeploymentMode.UPDATE and out.previous_config == "old-cfg"
    assert out.previous_failure_reason == ROLLBACK_REASON and out.deployment_config == expected


def test_deploy_waits_for_a_busy_endpoint_and_follows_its_own_update(sm) -> None:
    from functions.handlers.deploy import handler

    doc = load_state("deploy")
    target = doc["upload"]["names"]["endpoint_config"]
    sm.add_response("describe_endpoint", _described("Updating", "old-cfg", pending="other-cfg"))
    with pytest.raises(errors.EndpointNotReady, match="is Updating"):
        handler(doc, FakeContext())
    sm.add_response("describe_endpoint", _described("Updating", "old-cfg", pending=target))
    out = handler(doc, FakeContext())  # a retried invocation: no second UpdateEndpoint
    assert out["status"] == "IN_PROGRESS" and out["previous_config"] == "old-cfg"
    # (A Failed endpoint is deleted and re-created: test_fn_aws_audit.py, aws-audit #16.)
    sm.add_response("describe_endpoint", _described("OutOfService", "old-cfg", "boom"))
    with pytest.raises(errors.DeploymentFailed, match="is OutOfService: boom"):
        handler(doc, FakeContext())


def test_deploy_needs_alarms_for_an_update(sm) -> None:
    from functions.handlers.deploy import handler

    doc = load_state("deploy")
    doc.pop("alarms")
    sm.add_response("describe_endpoint", _described("InService", "old-cfg"))
    with pytest.raises(errors.DeploymentFailed, match="no rollback alarms"):
        handler(doc, FakeContext())


def _alarm_response(states: dict[str, str]) -> dict:
    return {
        "MetricAlarms": [{"AlarmName": n, "StateValue": s} for n, s in states.items()],
        "CompositeAlarms": [],
    }


def test_check_reports_rollback_with_alarm_states(sm, cw) -> None:
    from functions.handlers.check_deployment import handler

    doc = load_state("check_deployment")
    names = doc["alarms"]["names"]
    sm.add_response("describe_endpoint", _described("InService", "xgb-best-1-cfg", ROLLBACK_REASON))
    cw.add_response(
        "describe_alarms", _alarm_response({names[0]: "ALARM", names[1]: "OK"}), {"AlarmNames": names}
    )
    out = DeploymentState.model_validate(handler(doc, FakeContext()))
    assert out.status is DeploymentStatus.ROLLED_BACK and out.failure_reason == ROLLBACK_REASON
    assert out.alarms_in_alarm == [names[0]] and out.attempts == 1


def test_check_then_watch(sm, cw) -> None:
    from functions.handlers.check_deployment import handler

    doc = load_state("check_deployment")
    names = doc["alarms"]["names"]
    sm.add_response("describe_endpoint", _described("InService", doc["deployment"]["target_config"]))
    cw.add_response(
        "describe_alarms", _alarm_response({names[0]: "OK", names[1]: "OK"}), {"AlarmNames": names}
    )
    doc["deployment"] = handler(doc, FakeContext())
    assert doc["deployment"]["status"] == "SUCCEEDED"
    # Same function, now the post-deployment watch: it reads the alarms and their history since the success.
    cw.add_response(
        "describe_alarms", _alarm_response({names[0]: "OK", names[1]: "ALARM"}), {"AlarmNames": names}
    )
    for name in names:
        cw.add_response("describe_alarm_history", {"AlarmHistoryItems": []}, {
            "AlarmName": name, "HistoryItemType": "StateUpdate", "StartDate": ANY, "EndDate": ANY})  # fmt: skip
    sm.add_response("describe_endpoint", _described("InService", doc["deployment"]["target_config"]))  # still ours
    watch = WatchState.model_validate(handler(doc, FakeContext()))
    assert watch.alarm and watch.alarms_in_alarm == [names[1]] and not watch.rolled_back


def test_missing_alarm_reported(cw, sm) -> None:
    from functions.handlers.check_deployment import handler

    doc = load_state("check_deployment")
    names = doc["alarms"]["names"]
    sm.add_response("describe_endpoint", _described("Updating", "xgb-best-1-cfg"))
    cw.add_response("describe_alarms", _alarm_response({names[0]: "OK"}), {"AlarmNames": names})
    out = handler(doc, FakeContext())
    assert out["alarms"] == {names[0]: "OK", names[1]: "MISSING"} and out["status"] == "IN_PROGRESS"


def test_rollback_to_previous_config(sm) -> None:
    from functions.handlers.rollback import handler

    doc = load_state("rollback")
    target = doc["deployment"]["target_config"]
    sm.add_response("describe_endpoint", _described("InService", target))
    sm.add_response(
        "update_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"},
        {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": "xgb-best-1-cfg",
            "DeploymentConfig": ROLLBACK_CONFIG,
        },
    )
    out = WatchState.model_validate(handler(doc, FakeContext()))
    assert out.rolled_back and out.rollback_config == "xgb-best-1-cfg" and out.alarm
    # A retry after the update started does not update again.
    sm.add_response("describe_endpoint", _described("Updating", target, pending="xgb-best-1-cfg"))
    assert handler(doc, FakeContext())["rolled_back"] is True


def test_rollback_impossible_on_first_deployment() -> None:
    from functions.handlers.rollback import handler

    doc = load_state("rollback")
    doc["deployment"] |= {"mode": "CREATE", "previous_config": None}
    with pytest.raises(errors.DeploymentFailed, match="no previous config"):
        handler(doc, FakeContext())


def test_create_model_and_config_are_idempotent(aws, sm) -> None:
    import hashlib

    from functions.handlers.create_endpoint_config import handler as config_handler
    from functions.handlers.create_model import handler as model_handler

    doc = load_state("create_model")
    names = doc["upload"]["names"]
    model_arn = f"arn:aws:sagemaker:us-east-1:123456789012:model/{names['model']}"
    s3 = boto3.client("s3")  # the model points at a content-addressed copy of the upload (issue 12 §5)
    s3.create_bucket(Bucket=doc["upload"]["bucket"])
    s3.put_object(Bucket=doc["upload"]["bucket"], Key=doc["upload"]["key"], Body=b"artifact")
    s3.put_object(Bucket=doc["upload"]["bucket"], Key=doc["upload"]["evaluation_key"], Body=b"{}")
    doc["upload"]["version_id"] = None
    copy = f"s3://{doc['upload']['bucket']}/deployed/{hashlib.sha256(b'artifact').hexdigest()}/model.tar.gz"
    sm.add_response(
        "create_model",
        {"ModelArn": model_arn},
        {
            "ModelName": names["model"],
            "ExecutionRoleArn": ANY,
            "PrimaryContainer": {
                "Image": ANY,
                "ModelDataUrl": copy,
                "Mode": "SingleModel",
            },
        },
    )
    assert model_handler(doc, FakeContext()) == {
        "name": names["model"],
        "arn": model_arn,
        "status": "created",
        "model_data_url": copy,
        "sha256": hashlib.sha256(b"artifact").hexdigest(),
    }
    sm.add_client_error(
        "create_model", "ValidationException", f'Cannot create already existing model "{model_arn}".'
    )
    existing = {"ModelName": names["model"], "ModelArn": model_arn, "CreationTime": NOW,
                "PrimaryContainer": {"Image": "i", "ModelDataUrl": copy}}  # fmt: skip
    sm.add_response("describe_model", existing)
    sm.add_response("describe_model", existing)  # the existing model points at the same bytes
    assert model_handler(doc, FakeContext())["status"] == "existed"

    cfg_arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{names['endpoint_config']}"
    _not_found(sm, "describe_endpoint", 'Could not find endpoint "guardrail-endpoint".')  # a new endpoint
    sm.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": cfg_arn},
        {
            "EndpointConfigName": names["endpoint_config"],
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": names["model"],
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 2,
                    "InitialVariantWeight": 1.0,
                }
            ],
            "DataCaptureConfig": ANY,
        },
    )
    assert config_handler(doc, FakeContext())["status"] == "created"
    _not_found(sm, "describe_endpoint", 'Could not find endpoint "guardrail-endpoint".')
    sm.add_client_error(
        "create_endpoint_config",
        "ValidationException",
        f'Cannot create already existing endpoint configuration "{cfg_arn}".',
    )
    sm.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": names["endpoint_config"],
            "EndpointConfigArn": cfg_arn,
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": names["model"]}],
            "CreationTime": NOW,
        },
    )
    assert config_handler(doc, FakeContext()) == {
        "name": names["endpoint_config"],
        "arn": cfg_arn,
        "status": "existed",
        "variant": "AllTraffic",
        "live_config": None,  # a new endpoint: no old fleet for the relative 4XX alarm
    }


def test_throttling_is_translated(sm) -> None:
    from functions.handlers.deploy import handler

    sm.add_client_error("describe_endpoint", "ThrottlingException", "Rate exceeded", http_status_code=400)
    with pytest.raises(errors.Throttled, match="Rate exceeded"):
        handler(load_state("deploy"), FakeContext())
