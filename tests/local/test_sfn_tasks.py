"""local/sfn_tasks.py: StopExecution right after StartExecution stops it (moto's worker thread may not have built its
environment yet; AWS accepts StopExecution on any RUNNING execution)."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from local import sfn_tasks

WAIT = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}})


def test_stop_right_after_start_always_aborts():
    sfn_tasks.install()
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            sfn = boto3.client("stepfunctions", region_name="us-east-1")
            machine = sfn.create_state_machine(
                name="waits", definition=WAIT, roleArn="arn:aws:iam::123456789012:role/sfn"
            )["stateMachineArn"]
            for i in range(30):
                arn = sfn.start_execution(stateMachineArn=machine, name=f"e{i}", input="{}")["executionArn"]
                sfn.stop_execution(executionArn=arn, error="E", cause="c")
                assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    finally:
        sfn_tasks.uninstall()
