"""The canary's sequential verdict as a rollback alarm: ensure_alarms puts and verifies the verdict alarm,
deploy hands it to SageMaker with the other two, check_deployment publishes Regression=1 only on REJECT.
CloudWatch is moto; SageMaker calls go through botocore's Stubber, which validates every request."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from fn_support import ENDPOINT, FakeContext, load_state

from functions.adapters import sagemaker
from functions.config import load_settings, reset_settings, settings_from
from functions.models import (
    AlarmsState,
    DeployInput,
    DeploymentMode,
    DeploymentState,
    DeploymentStatus,
    Verdict,
)
from functions.steps.check_deployment import check_deployment
from functions.steps.deploy import build_deployment_config
from functions.steps.ensure_alarms import VERDICT_METRIC, VERDICT_NAMESPACE

OLD, NEW, VARIANT = "old-cfg", "new-cfg", "AllTraffic"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=150)
ON = {"CANARY_VERDICT": "msprt", "METRIC_PERIOD_SECONDS": "1", "SHADOW_MIN_LATENCY_SAMPLES": "20",
      "SHADOW_ERROR_MARGIN": "0.02", "ALARM_PERIOD_SECONDS": "10"}  # fmt: skip


@pytest.fixture
def sm() -> Stubber:
    with Stubber(sagemaker.client()) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _described(status: str, config: str) -> dict:
    return {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": config,
        "ProductionVariants": [{"VariantName": VARIANT}],
        "EndpointStatus": status,
        "CreationTime": START,
        "LastModifiedTime": START,
    }


def _put_fleet(cw, config: str, n: int, failures: int, seed: int) -> None:
    """n requests over n/4 seconds since START, `failures` in 10 answered 5XX, latency ~2 ms."""
    rng = random.Random(seed)
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": VARIANT},
            {"Name": "EndpointConfigName", "Value": config}]  # fmt: skip
    data = []
    for i in range(n):
        ts = START + timedelta(seconds=i // 4, milliseconds=(i % 4) * 200)
        data.append({"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": ts,
                     "Value": 1.0 if i % 10 < failures else 0.0, "StorageResolution": 1})  # fmt: skip
        data.append({"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": ts, "Unit": "Microseconds",
                     "Value": 2000 * (1 + rng.uniform(-0.05, 0.05)), "StorageResolution": 1})  # fmt: skip
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[i : i + 500])


def _updating(**extra) -> DeploymentState:
    return DeploymentState(
        mode=DeploymentMode.UPDATE, endpoint_name=ENDPOINT, target_config=NEW, previous_config=OLD,
        status=DeploymentStatus.IN_PROGRESS, previous_variant=VARIANT, target_variant=VARIANT,
        started_at=START, **extra,
    )  # fmt: skip


def _regressions(cw) -> list[float]:
    out = cw.get_metric_statistics(
        Namespace=VERDICT_NAMESPACE, MetricName=VERDICT_METRIC, Statistics=["Maximum"], Period=60,
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "EndpointConfigName", "Value": NEW}],
        StartTime=START - timedelta(minutes=5), EndTime=datetime.now(UTC) + timedelta(minutes=5),
    )  # fmt: skip
    return [p["Maximum"] for p in out["Datapoints"]]


# --- ensure_alarms ---------------------------------------------------------------------------------------
def test_verdict_alarm_is_put_and_verified(aws, monkeypatch) -> None:
    from functions.handlers.ensure_alarms import handler

    monkeypatch.setenv("CANARY_VERDICT", "msprt")
    reset_settings()
    doc = load_state("ensure_alarms")
    names = doc["upload"]["names"]
    out = AlarmsState.model_validate(handler(doc, FakeContext()))
    assert out.verdict_alarm == f"guardrail-{ENDPOINT}-{names['endpoint_config']}-verdict"
    assert out.names == [names["error_alarm"], names["latency_alarm"], out.client_error_alarm, out.verdict_alarm]
    assert out.created == out.names + out.watch_names  # + the post-deployment watch's (aws-audit #11)
    alarm = boto3.client("cloudwatch").describe_alarms(AlarmNames=[out.verdict_alarm])["MetricAlarms"][0]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "Guardrail/CanaryVerdict",
        "Regression",
        "Maximum",
    )
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": names["endpoint_config"],
    }
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1 and alarm["TreatMissingData"] == "notBreaching"
    assert alarm["Period"] == load_settings().alarm_period_seconds


def test_alarms_only_puts_no_verdict_alarm(aws, monkeypatch) -> None:
    from functions.handlers.ensure_alarms import handler

    monkeypatch.setenv("CANARY_VERDICT", "alarms-only")
    reset_settings()
    out = AlarmsState.model_validate(handler(load_state("ensure_alarms"), FakeContext()))
    assert out.verdict_alarm is None and len(out.names) == 3  # 5XX, latency, relative 4XX (issue 11 §2)


# --- deploy ----------------------------------------------------------------------------------------------
def test_update_hands_all_three_alarms_to_sagemaker(sm) -> None:
    from functions.steps.deploy import deploy

    doc = load_state("deploy")
    upload = DeployInput.model_validate(doc).upload
    verdict = f"guardrail-{ENDPOINT}-{upload.names.endpoint_config}-verdict"
    names = [upload.names.error_alarm, upload.names.latency_alarm, verdict]
    alarms = AlarmsState(error_alarm=names[0], latency_alarm=names[1], verdict_alarm=verdict, names=names)
    settings = settings_from(ON)
    expected = build_deployment_config(
        "CANARY", canary_percent=upload.canary_percent, linear_step_percent=upload.linear_step_percent,
        wait_interval_seconds=settings.wait_interval_seconds,
        termination_wait_seconds=settings.termination_wait_seconds,
        max_execution_timeout_seconds=settings.max_execution_timeout_seconds, alarm_names=names,
    )  # fmt: skip
    assert [a["AlarmName"] for a in expected["AutoRollbackConfiguration"]["Alarms"]] == names
    sm.add_response("describe_endpoint", _described("InService", OLD), {"EndpointName": ENDPOINT})
    sm.add_response(  # the Stubber validates the request against SageMaker's service model
        "update_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"},
        {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": upload.names.endpoint_config,
            "DeploymentConfig": expected,
        },
    )
    out = deploy(upload, alarms, settings)
    # One production variant name for both fleets (blue/green rule); the verdict tells them apart by config.
    assert out.previous_variant == VARIANT and out.target_variant == VARIANT
    assert out.started_at is not None and abs(datetime.now(UTC) - out.started_at) < timedelta(seconds=30)


# --- check_deployment ------------------------------------------------------------------------------------
def test_erroring_new_fleet_publishes_a_regression_and_records_the_verdict(aws, sm) -> None:
    cw = boto3.client("cloudwatch")
    _put_fleet(cw, OLD, 400, 0, 1)
    _put_fleet(cw, NEW, 400, 2, 2)  # 20 % of the canary's requests fail
    sm.add_response("describe_endpoint", _described("Updating", OLD), {"EndpointName": ENDPOINT})
    out = check_deployment(_updating(), None, settings_from(ON))
    assert out.status is DeploymentStatus.IN_PROGRESS
    verdict = out.canary_verdict
    assert verdict is not None and verdict.verdict is Verdict.REJECT and verdict.method == "msprt-canary"
    assert verdict.shadow.errors_5xx == 80 and verdict.production.errors_5xx == 0
    assert verdict.details["verdict"]["decision"] == "REJECT"
    assert _regressions(cw) == [1.0]
    # The document survives the state machine (JSON) and the next poll keeps the REJECT up.
    again = DeploymentState.model_validate(out.model_dump(mode="json"))
    sm.add_response("describe_endpoint", _described("Updating", OLD), {"EndpointName": ENDPOINT})
    assert check_deployment(again, None, settings_from(ON)).canary_verdict.verdict is Verdict.REJECT


def test_equal_fleet_publishes_nothing(aws, sm) -> None:
    cw = boto3.client("cloudwatch")
    _put_fleet(cw, OLD, 400, 0, 1)
    _put_fleet(cw, NEW, 400, 0, 3)
    sm.add_response("describe_endpoint", _described("Updating", OLD), {"EndpointName": ENDPOINT})
    out = check_deployment(_updating(), None, settings_from(ON))
    assert out.canary_verdict is not None and out.canary_verdict.verdict is not Verdict.REJECT
    assert _regressions(cw) == []


def test_no_canary_traffic_yet_publishes_nothing(aws, sm) -> None:
    cw = boto3.client("cloudwatch")
    _put_fleet(cw, OLD, 400, 0, 1)
    sm.add_response("describe_endpoint", _described("Updating", OLD), {"EndpointName": ENDPOINT})
    out = check_deployment(_updating(), None, settings_from(ON))
    assert out.canary_verdict is not None and out.canary_verdict.verdict is Verdict.INCONCLUSIVE
    assert not out.canary_verdict.decisive and _regressions(cw) == []


def test_alarms_only_and_finished_updates_are_not_judged(aws, sm) -> None:
    cw = boto3.client("cloudwatch")
    _put_fleet(cw, OLD, 400, 0, 1)
    _put_fleet(cw, NEW, 400, 2, 2)
    sm.add_response("describe_endpoint", _described("Updating", OLD), {"EndpointName": ENDPOINT})
    off = check_deployment(_updating(), None, settings_from({**ON, "CANARY_VERDICT": "alarms-only"}))
    assert off.canary_verdict is None
    sm.add_response("describe_endpoint", _described("InService", NEW), {"EndpointName": ENDPOINT})
    done = check_deployment(_updating(), None, settings_from(ON))
    assert done.status is DeploymentStatus.SUCCEEDED and done.canary_verdict is None
    assert _regressions(cw) == []
