"""moto never emits Step Functions "Execution Status Change" events; local/sfn_events.py does (issue 12 §2)."""

from __future__ import annotations

import json
import time

import boto3
from moto import mock_aws

from local.sfn_events import DETAIL_TYPE, ExecutionStatusEvents

WAIT = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}})
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


def _inbox(pattern: dict) -> tuple[object, str]:
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="ended")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="ended", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="ended", Targets=[{"Id": "q", "Arn": arn}])
    return sqs, url


def _until(sfn, arn: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while sfn.describe_execution(executionArn=arn)["status"] != status:
        assert time.monotonic() < deadline, f"{arn} never {status}"
        time.sleep(0.05)


def _received(sqs, url) -> list[dict]:
    return [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]


def test_an_aborted_and_a_succeeded_execution_each_send_one_event_a_rule_can_select():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        role = "arn:aws:iam::123456789012:role/sfn"
        waiting = sfn.create_state_machine(name="waits", definition=WAIT, roleArn=role)["stateMachineArn"]
        passing = sfn.create_state_machine(name="passes", definition=PASS, roleArn=role)["stateMachineArn"]
        sqs, url = _inbox({"source": ["aws.states"], "detail-type": [DETAIL_TYPE],
                           "detail": {"status": ["ABORTED", "TIMED_OUT", "FAILED"]}})  # fmt: skip
        emitter = ExecutionStatusEvents()
        emitter.emit()
        stopped = sfn.start_execution(stateMachineArn=waiting, name="stopped", input='{"a": 1}')["executionArn"]
        done = sfn.start_execution(stateMachineArn=passing, name="done", input="{}")["executionArn"]
        _until(sfn, done, "SUCCEEDED")
        sfn.stop_execution(executionArn=stopped, cause="operator")
        _until(sfn, stopped, "ABORTED")
        sent = emitter.emit()
        assert {(e["detail"]["name"], e["detail"]["status"]) for e in sent} >= {("stopped", "ABORTED"), ("done", "SUCCEEDED")}
        assert emitter.emit() == []  # one event per change
        [event] = _received(sqs, url)  # the rule's pattern keeps only the ABORTED one
        assert event["source"] == "aws.states" and event["detail-type"] == DETAIL_TYPE
        assert event["resources"] == [stopped] and event["detail"]["executionArn"] == stopped
        assert event["detail"]["stateMachineArn"] == waiting and json.loads(event["detail"]["input"]) == {"a": 1}
        assert isinstance(event["detail"]["startDate"], int) and isinstance(event["detail"]["stopDate"], int)


def test_executions_over_before_the_emitter_started_are_not_reported():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(name="waits", definition=WAIT, roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
        old = sfn.start_execution(stateMachineArn=machine, name="old", input="{}")["executionArn"]
        sfn.stop_execution(executionArn=old)
        _until(sfn, old, "ABORTED")
        assert ExecutionStatusEvents().emit() == []
