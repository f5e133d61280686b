"""A real Step Functions execution on moto (rollback path) plus synthetic SageMaker metrics and alarms."""

import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from local.alarms import patch_moto

ENDPOINT = "guardrail-bank-marketing"
OLD, NEW = "gr-bank-marketing-v1-cfg", "gr-bank-marketing-v3-cfg"
ERR_ALARM, LAT_ALARM = "gr-bank-marketing-v3-5xx", "gr-bank-marketing-v3-latency"

# The rollback path of the real state machine, with Pass states standing in for the Lambda tasks.
DEFINITION = {
    "StartAt": "ParseUpload",
    "States": {
        "ParseUpload": {
            "Type": "Pass", "ResultPath": "$.upload", "Next": "EnsureAlarms",
            "Result": {"endpoint_name": ENDPOINT, "model_name": "bank-marketing", "model_version": "v3",
                       "names": {"model": "gr-v3", "endpoint_config": NEW, "variant": "AllTraffic"}},
        },
        "EnsureAlarms": {
            "Type": "Pass", "ResultPath": "$.alarms", "Next": "Deploy",
            "Result": {"error_alarm": ERR_ALARM, "latency_alarm": LAT_ALARM, "names": [ERR_ALARM, LAT_ALARM]},
        },
        "Deploy": {
            "Type": "Pass", "ResultPath": "$.deployment", "Next": "WaitForDeployment",
            "Result": {"mode": "UPDATE", "endpoint_name": ENDPOINT, "target_config": NEW, "previous_config": OLD,
                       "status": "IN_PROGRESS"},
        },
        "WaitForDeployment": {"Type": "Wait", "Seconds": 1, "Next": "CheckDeployment"},
        "CheckDeployment": {
            "Type": "Pass", "ResultPath": "$.deployment", "Next": "DeploymentOutcome",
            "Result": {"mode": "UPDATE", "endpoint_name": ENDPOINT, "target_config": NEW, "previous_config": OLD,
                       "status": "ROLLED_BACK", "current_config": OLD,
                       "failure_reason": f"One or more configured alarm for automatic rollback deployment is in ALARM state: [{ERR_ALARM}]."},
        },
        "DeploymentOutcome": {
            "Type": "Choice", "Default": "Notify",
            "Choices": [{"Variable": "$.deployment.status", "StringEquals": "ROLLED_BACK", "Next": "RolledBack"}],
        },
        "RolledBack": {"Type": "Pass", "Result": "ROLLED_BACK", "ResultPath": "$.outcome", "Next": "Notify"},
        "Notify": {
            "Type": "Pass", "ResultPath": "$.notification", "Next": "Done",
            "Result": {"message_id": "m-1", "outcome": "ROLLED_BACK",
                       "subject": "Guardrail: ROLLED_BACK gr-v3 on guardrail-bank-marketing",
                       "payload": {"outcome": "ROLLED_BACK", "endpoint": ENDPOINT, "model": "bank-marketing/v3",
                                   "summary": "Rolled back: 5XX alarm", "timestamp": "2026-01-01T00:00:00Z"}},
        },
        "Done": {"Type": "Succeed"},
    },
}


@pytest.fixture
def rollback_execution():
    patch_moto()  # the local cloud's moto: alarms start INSUFFICIENT_DATA and keep a history
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        session = boto3.Session(region_name="us-east-1")
        sfn = session.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="guardrail", definition=json.dumps(DEFINITION), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        cw = session.client("cloudwatch")
        for name, metric, threshold in ((ERR_ALARM, "Invocation5XXErrors", 0.05), (LAT_ALARM, "ModelLatency", 200000)):
            cw.put_metric_alarm(
                AlarmName=name, Namespace="AWS/SageMaker", MetricName=metric, Statistic="Average",
                Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"},
                            {"Name": "EndpointConfigName", "Value": NEW}],
                Period=10, EvaluationPeriods=1, Threshold=threshold, ComparisonOperator="GreaterThanOrEqualToThreshold",
                TreatMissingData="notBreaching",
            )
        arn = sfn.start_execution(stateMachineArn=machine, name="exec-rollback", input=json.dumps({"detail": {}}))[
            "executionArn"
        ]
        for _ in range(100):
            if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                break
            time.sleep(0.1)
        cw.set_alarm_state(AlarmName=LAT_ALARM, StateValue="OK", StateReason="latency fine")
        cw.set_alarm_state(AlarmName=ERR_ALARM, StateValue="ALARM", StateReason="5XX rate 0.4 >= 0.05")
        # Ten seconds of traffic: the old fleet healthy, the new fleet answering 40% 5XX.
        now = datetime.now(UTC).replace(microsecond=0)
        data = []
        for i in range(10):
            at = now - timedelta(seconds=10 - i)
            for config, errors, latency in ((OLD, [0, 0, 0], 3000.0), (NEW, [1, 0, 1, 0, 0], 4000.0)):
                dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"},
                        {"Name": "EndpointConfigName", "Value": config}]
                data.append({"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at,
                             "Values": [1.0], "Counts": [float(len(errors))], "StorageResolution": 1})
                data.append({"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": at,
                             "Values": [float(e) for e in errors], "StorageResolution": 1})
                data.append({"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": at,
                             "Values": [latency], "StorageResolution": 1, "Unit": "Microseconds"})
        for chunk in range(0, len(data), 20):
            cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[chunk : chunk + 20])
        yield SimpleNamespace(
            session=session, arn=arn, endpoint=ENDPOINT, old=OLD, new=NEW, err_alarm=ERR_ALARM, lat_alarm=LAT_ALARM
        )


# The other report kinds: a guarded update that deploys, and a shadow test that promotes or rejects (its fleets'
# metrics carry the inference experiment's endpoint config, not the candidate's own).
IE_CONFIG = f"{ENDPOINT}-ie-abc123"
PROD_VARIANT, SHADOW_VARIANT = "bank-marketing-v5-shadow", "bank-marketing-v6-shadow"


def _notify(outcome: str, summary: str) -> dict:
    return {"Type": "Pass", "ResultPath": "$.notification", "Next": "Done",
            "Result": {"message_id": "m-1", "outcome": outcome, "subject": f"Guardrail {outcome}: bank-marketing/v3",
                       "payload": {"outcome": outcome, "endpoint": ENDPOINT, "model": "bank-marketing/v3",
                                   "summary": summary, "timestamp": "2026-01-01T00:00:00Z"}}}


def deployed_definition() -> dict:
    states = json.loads(json.dumps(DEFINITION["States"]))
    states["CheckDeployment"]["Result"] = {**states["CheckDeployment"]["Result"], "status": "SUCCEEDED",
                                           "current_config": NEW, "failure_reason": None}
    states["CheckDeployment"]["Next"] = "Watch"
    states["Watch"] = {"Type": "Pass", "ResultPath": "$.watch", "Next": "Deployed", "Result": {
        "alarm": False, "alarms": {ERR_ALARM: "OK", LAT_ALARM: "OK"},
        "evidence": {"new_fleet_requests": 50, "old_fleet_requests": 30, "min_requests": 100, "policy": "accept",
                     "since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:01:00Z", "sufficient": False}}}
    states["Deployed"] = {"Type": "Pass", "Result": "DEPLOYED_UNVERIFIED", "ResultPath": "$.outcome", "Next": "Notify"}
    for name in ("DeploymentOutcome", "RolledBack"):
        del states[name]
    states["Notify"] = _notify("DEPLOYED_UNVERIFIED", "bank-marketing/v3 now serves all traffic. It was NOT verified.")
    return {"StartAt": "ParseUpload", "States": states}


def shadow_definition(verdict: str) -> dict:
    outcome = "PROMOTED" if verdict == "PROMOTE" else "SHADOW_REJECTED"
    reason = (f"{verdict}: {SHADOW_VARIANT} vs {PROD_VARIANT} after 417/799 requests: latency x1.02 "
              "(CI x0.98-x1.05, margin x1.10)")
    shadow = {"status": "CONCLUDED", "experiment_name": "bank-marketing-v6-shadow-1", "endpoint_name": ENDPOINT,
              "production_variant": PROD_VARIANT, "production_model": "bank-marketing-v5",
              "shadow_variant": SHADOW_VARIANT, "shadow_model": "bank-marketing-v6", "sampling_percent": 100,
              "done": True, "verdict": verdict,
              "analysis": {"verdict": verdict, "reasons": [reason],
                           "production": {"variant": PROD_VARIANT, "invocations": 799.0, "errors_5xx": 0.0,
                                          "error_rate": 0.0, "latency_avg_us": 9422.8},
                           "shadow": {"variant": SHADOW_VARIANT, "invocations": 417.0, "errors_5xx": 0.0,
                                      "error_rate": 0.0, "latency_avg_us": 9611.2},
                           "details": {"verdict": {"decision": verdict, "metrics": [
                               {"metric": "error_rate", "decision": "PROMOTE", "production_samples": 799,
                                "shadow_samples": 417, "production_estimate": 0.0, "shadow_estimate": 0.0,
                                "difference": 0.0, "ci_low": -1.0, "ci_high": 0.011, "margin": 0.02, "msprt": 1.0,
                                "threshold": 60.0},
                               {"metric": "latency_mean", "decision": verdict, "production_samples": 799,
                                "shadow_samples": 417, "production_estimate": 9422.8, "shadow_estimate": 9611.2,
                                "difference": 0.02, "ci_low": -0.02, "ci_high": 0.05, "margin": 0.10, "msprt": 80.0,
                                "threshold": 60.0}],
                               "explanation": reason}}}}
    states = {
        "ParseUpload": DEFINITION["States"]["ParseUpload"] | {"Next": "CreateEndpointConfig"},
        "CreateEndpointConfig": {"Type": "Pass", "ResultPath": "$.endpoint_config", "Next": "EnsureAlarms",
                                 "Result": {"name": NEW, "status": "created", "variant": PROD_VARIANT,
                                            "live_config": OLD}},
        "EnsureAlarms": DEFINITION["States"]["EnsureAlarms"] | {"Next": "StartShadowTest"},
        "StartShadowTest": {"Type": "Pass", "ResultPath": "$.shadow", "Next": "WaitForShadow",
                            "Result": {**shadow, "status": "RUNNING", "done": False, "verdict": None, "analysis": None}},
        "WaitForShadow": {"Type": "Wait", "Seconds": 1, "Next": "ConcludeShadowTest"},
        "ConcludeShadowTest": {"Type": "Pass", "ResultPath": "$.shadow", "Next": "Outcome", "Result": shadow},
        "Outcome": {"Type": "Pass", "Result": outcome, "ResultPath": "$.outcome", "Next": "Notify"},
        "Notify": _notify(outcome, reason),
        "Done": {"Type": "Succeed"},
    }
    return {"StartAt": "ParseUpload", "States": states}


def _run(sfn, definition: dict, name: str) -> str:
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=f"exec-{name}", input=json.dumps({"detail": {}}))[
        "executionArn"
    ]
    for _ in range(100):
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            return arn
        time.sleep(0.1)
    raise AssertionError(f"{name} still running")


def _put_fleets(cw, fleets: list[tuple[str, str, list[int], float]]) -> None:
    """Ten seconds of traffic per (config, variant, 5XX pattern per second, latency us)."""
    now = datetime.now(UTC).replace(microsecond=0)
    data = []
    for i in range(10):
        at = now - timedelta(seconds=10 - i)
        for config, variant, errors, latency in fleets:
            for dims in ([{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant},
                          {"Name": "EndpointConfigName", "Value": config}],
                         [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]):
                data.append({"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at,
                             "Values": [1.0], "Counts": [float(len(errors))], "StorageResolution": 1})
                data.append({"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": at,
                             "Values": [float(e) for e in errors], "StorageResolution": 1})
                data.append({"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": at,
                             "Values": [latency], "StorageResolution": 1, "Unit": "Microseconds"})
    for chunk in range(0, len(data), 20):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[chunk : chunk + 20])


@pytest.fixture
def report_kinds():
    """One execution per report kind: {kind: arn} plus the session (moto, with the local cloud's alarm patches)."""
    patch_moto()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        session = boto3.Session(region_name="us-east-1")
        sfn, cw = session.client("stepfunctions"), session.client("cloudwatch")
        for name, metric, threshold in ((ERR_ALARM, "Invocation5XXErrors", 0.05), (LAT_ALARM, "ModelLatency", 200000)):
            cw.put_metric_alarm(
                AlarmName=name, Namespace="AWS/SageMaker", MetricName=metric, Statistic="Average",
                Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"},
                            {"Name": "EndpointConfigName", "Value": NEW}],
                Period=10, EvaluationPeriods=1, Threshold=threshold, ComparisonOperator="GreaterThanOrEqualToThreshold",
                TreatMissingData="notBreaching",
            )
        arns = {
            "rollback": _run(sfn, DEFINITION, "rollback"),
            "deployment": _run(sfn, deployed_definition(), "deployment"),
            "shadow-promote": _run(sfn, shadow_definition("PROMOTE"), "shadow-promote"),
            "shadow-reject": _run(sfn, shadow_definition("REJECT"), "shadow-reject"),
        }
        cw.set_alarm_state(AlarmName=ERR_ALARM, StateValue="ALARM", StateReason="5XX rate 0.4 >= 0.05")
        cw.set_alarm_state(AlarmName=LAT_ALARM, StateValue="OK", StateReason="latency fine")
        _put_fleets(cw, [(OLD, "AllTraffic", [0, 0, 0], 3000.0), (NEW, "AllTraffic", [1, 0, 1, 0, 0], 4000.0),
                         (IE_CONFIG, PROD_VARIANT, [0, 0, 0], 9000.0), (IE_CONFIG, SHADOW_VARIANT, [0, 0, 1], 9500.0)])
        yield SimpleNamespace(session=session, arns=arns, old=OLD, ie_config=IE_CONFIG, prod_variant=PROD_VARIANT,
                              shadow_variant=SHADOW_VARIANT)
