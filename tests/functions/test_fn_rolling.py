"""ROLLING, the fourth strategy (issue 15 §3): deployment.json accepts it with its batch sizes, deploy builds a
RollingUpdatePolicy under the same alarms (checked against botocore's service model), and the polls and the lock
last as long as its batches."""

from __future__ import annotations

import boto3
import pytest
from fn_support import load_state
from pydantic import ValidationError

from functions import errors
from functions.config import load_settings, reset_settings
from functions.models import DeploymentRequest, Strategy, Upload
from functions.steps.deploy import (
    BATCH_PROVISIONING_SECONDS,
    PROVISIONING_MARGIN_SECONDS,
    build_deployment_config,
    execution_timeout,
    upload_deployment_config,
)

ALARMS = ["a-5xx", "a-latency"]


def _validate_update(config: dict) -> None:
    from botocore.validate import ParamValidator

    shape = boto3.client("sagemaker").meta.service_model.operation_model("UpdateEndpoint").input_shape
    report = ParamValidator().validate(
        {"EndpointName": "ep", "EndpointConfigName": "cfg", "DeploymentConfig": config}, shape
    )
    assert not report.has_errors(), report.generate_report()


def _rolling(**kw) -> dict:
    args = {
        "canary_percent": 10,
        "linear_step_percent": 20,
        "wait_interval_seconds": 60,
        "termination_wait_seconds": 30,
        "max_execution_timeout_seconds": 600,
        "alarm_names": ALARMS,
        "instance_count": 4,
        "rolling_batch_percent": 25,
    } | kw
    return build_deployment_config("ROLLING", **args)


def test_rolling_deployment_config() -> None:
    config = _rolling()
    _validate_update(config)
    assert set(config) == {"RollingUpdatePolicy", "AutoRollbackConfiguration"}
    policy = config["RollingUpdatePolicy"]
    assert policy["MaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert policy["WaitIntervalInSeconds"] == 60 and "RollbackMaximumBatchSize" not in policy  # AWS: 100 %
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": n} for n in ALARMS]}
    # 4 batches of one instance: 4 bakes, and each batch after the first launches instances
    needed = 4 * 60 + PROVISIONING_MARGIN_SECONDS + 3 * BATCH_PROVISIONING_SECONDS
    assert policy["MaximumExecutionTimeoutInSeconds"] == needed == execution_timeout(config)

    back = _rolling(rollback_batch_percent=50)["RollingUpdatePolicy"]
    assert back["RollbackMaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 50}


def test_rolling_batches_follow_the_fleet() -> None:
    two = _rolling(instance_count=2, rolling_batch_percent=5)["RollingUpdatePolicy"]  # one instance of two
    assert two["MaximumExecutionTimeoutInSeconds"] == 2 * 60 + PROVISIONING_MARGIN_SECONDS + BATCH_PROVISIONING_SECONDS
    with pytest.raises(errors.InvalidTrigger, match="at least 2 instances"):
        _rolling(instance_count=1)  # a batch of the only instance is 100 % (AWS: 5-50 %)
    with pytest.raises(errors.InvalidTrigger, match="over SageMaker's 28800s maximum"):
        _rolling(instance_count=20, rolling_batch_percent=5, wait_interval_seconds=3600)


def test_blue_green_strategies_keep_their_policy() -> None:
    for strategy in (Strategy.ALL_AT_ONCE, Strategy.CANARY, Strategy.LINEAR):
        config = build_deployment_config(
            strategy, canary_percent=10, linear_step_percent=20, wait_interval_seconds=60,
            termination_wait_seconds=30, max_execution_timeout_seconds=600, alarm_names=ALARMS,
        )  # fmt: skip
        assert set(config) == {"BlueGreenUpdatePolicy", "AutoRollbackConfiguration"}
        assert execution_timeout(config) == config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"]


@pytest.mark.parametrize(("request_", "ok"), [
    ({"strategy": "ROLLING"}, True),
    ({"strategy": "ROLLING", "rolling_batch_percent": 5, "rollback_batch_percent": 100}, True),
    ({"strategy": "ROLLING", "rolling_batch_percent": 4}, False),
    ({"strategy": "ROLLING", "rolling_batch_percent": 51}, False),
    ({"strategy": "ROLLING", "rollback_batch_percent": 0}, False),
    ({"strategy": "ROLLING", "rollback_batch_percent": 101}, False),
    ({"strategy": "ROLLING", "rolling_batch_percent": "25"}, False),
])
def test_deployment_json_rolling_fields(request_, ok) -> None:
    if ok:
        assert DeploymentRequest.model_validate(request_).strategy is Strategy.ROLLING
    else:
        with pytest.raises(ValidationError):
            DeploymentRequest.model_validate(request_)


def test_upload_carries_the_batch_sizes_to_deploy_and_the_lock(monkeypatch) -> None:
    from functions.steps.lock import lock_ttl_seconds

    monkeypatch.setenv("INSTANCE_COUNT", "4")
    reset_settings()
    settings = load_settings()
    base = load_state("acquire_lock")["upload"]
    upload = Upload.model_validate(base | {"strategy": "ROLLING", "rolling_batch_percent": 50,
                                           "rollback_batch_percent": 25})
    config = upload_deployment_config(upload, settings, ALARMS)
    policy = config["RollingUpdatePolicy"]
    assert policy["MaximumBatchSize"]["Value"] == 50 and policy["RollbackMaximumBatchSize"]["Value"] == 25
    assert lock_ttl_seconds(upload, settings) >= execution_timeout(config)
    assert Upload.model_validate(base).rolling_batch_percent == settings.rolling_batch_percent == 25
    reset_settings()


def test_the_stack_parameter_offers_every_strategy() -> None:
    from pathlib import Path

    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((Path(__file__).resolve().parents[2] / "template.yaml").read_text())
    assert template["Parameters"]["DefaultStrategy"]["AllowedValues"] == [s.value for s in Strategy]
