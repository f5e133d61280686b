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
