"""Issue 11 §2: a new fleet answering 4XX to requests the old fleet answered is a regression. EnsureAlarms creates
a metric-math alarm (new-fleet 4XX rate minus the old fleet's) beside the 5XX and latency alarms, and it is in the
AutoRollbackConfiguration."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber
from fn_support import ENDPOINT, FakeContext, load_state

from functions.adapters import sagemaker
from functions.config import load_settings
from functions.models import AlarmsState, EndpointConfigResource, Upload
from functions.steps.deploy import build_deployment_config

OLD = "xgb-best-1-cfg"


def _doc(live_config: str | None) -> dict:
    doc = load_state("ensure_alarms")
    cfg = doc["upload"]["names"]["endpoint_config"]
    doc["endpoint_config"] = {
        "name": cfg,
        "arn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{cfg}",
        "status": "created",
        "variant": "AllTraffic",
        "live_config": live_config,
    }
    return doc


def test_4xx_alarm_is_the_new_fleets_rate_minus_the_old_fleets(aws) -> None:
    from functions.handlers.ensure_alarms import handler

    doc = _doc(OLD)
    names = doc["upload"]["names"]
    out = AlarmsState.model_validate(handler(doc, FakeContext()))
    name = f"guardrail-{ENDPOINT}-{names['endpoint_config']}-4xx-rate"
    assert out.client_error_alarm == name and name in out.names
    assert out.names[:2] == [names["error_alarm"], names["latency_alarm"]]
    alarm = boto3.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    returned = [q for q in alarm["Metrics"] if q["ReturnData"]]
    assert [q["Id"] for q in returned] == ["regression"]
    assert returned[0]["Expression"] == "new_fleet - FILL(FILL(old_fleet, REPEAT), 0)"
    for qid, config in (("new_fleet", names["endpoint_config"]), ("old_fleet", OLD)):
        stat = queries[qid]["MetricStat"]
        assert stat["Metric"]["MetricName"] == "Invocation4XXErrors" and stat["Stat"] == "Average"
        assert {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]} == {
            "EndpointName": ENDPOINT,
            "VariantName": "AllTraffic",
            "EndpointConfigName": config,
        }
        assert stat["Period"] == load_settings().alarm_period_seconds
    assert alarm["Threshold"] == load_settings().error_rate_threshold
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching" and alarm["ActionsEnabled"] is False
    assert "MetricName" not in alarm or not alarm.get("MetricName")  # Metrics excludes MetricName (API rule)
    # ...and it is one of the alarms SageMaker rolls back on
    config = build_deployment_config(
        "CANARY",
        canary_percent=25,
        linear_step_percent=25,
        wait_interval_seconds=20,
        termination_wait_seconds=0,
        max_execution_timeout_seconds=600,
        alarm_names=out.names,
    )
    assert {"AlarmName": name} in config["AutoRollbackConfiguration"]["Alarms"]


def test_without_a_live_endpoint_the_alarm_is_the_new_fleets_rate(aws) -> None:
    from functions.handlers.ensure_alarms import handler

    out = AlarmsState.model_validate(handler(_doc(None), FakeContext()))
    alarm = boto3.client("cloudwatch").describe_alarms(AlarmNames=[out.client_error_alarm])["MetricAlarms"][0]
    assert [q["Id"] for q in alarm["Metrics"]] == ["new_fleet", "regression"]
    assert [q["Expression"] for q in alarm["Metrics"] if q["ReturnData"]] == ["new_fleet"]


def test_create_endpoint_config_records_the_config_the_endpoint_serves() -> None:
    from functions.steps.create_endpoint_config import create_endpoint_config

    upload = Upload.model_validate(load_state("create_endpoint_config")["upload"])
    cfg = upload.names.endpoint_config
    with Stubber(sagemaker.client()) as sm:
        sm.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT,
                "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
                "EndpointConfigName": OLD,
                "EndpointStatus": "InService",
                "ProductionVariants": [{"VariantName": "AllTraffic"}],
                "CreationTime": "2026-11-23T12:00:00Z",
                "LastModifiedTime": "2026-11-23T12:00:00Z",
            },
        )
        sm.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:1:endpoint-config/{cfg}"},
        )
        out = create_endpoint_config(upload, load_settings())
    assert isinstance(out, EndpointConfigResource) and out.live_config == OLD
