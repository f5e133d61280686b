"""guardrail/operator.py (issue 15) on moto's Step Functions interpreter with local/sfn_tasks.py: approve and
reject find the task token in approval#<execution> and say who decided and why; abort stops the execution with
the reason as cause (ABORTED at once, even while it waits for a token); the endpoint resolves to the execution
holding its lock."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from moto import mock_aws

from guardrail.operator import OperatorError, abort, caller, decide, resolve, waiting_for
from local import sfn_tasks

TABLE = "guardrail-locks"
ENDPOINT = "guardrail-endpoint"
# A gate like the state machine's; its "approval function" (a boto3 hook below) stores the token as the real one.
GATE = {
    "StartAt": "AskUpdateApproval",
    "States": {
        "AskUpdateApproval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:approval",
                           "Payload": {"token.$": "$$.Task.Token", "name.$": "$$.Execution.Name"}},
            "TimeoutSeconds": 30,
            "ResultPath": "$.approval",
            "Catch": [{"ErrorEquals": ["ApprovalRejected"], "ResultPath": "$.approval", "Next": "Rejected"}],
            "End": True,
        },
        "Rejected": {"Type": "Pass", "End": True},
    },
}  # fmt: skip


def _approval_function(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    """`before-call.lambda.Invoke`: what functions/steps/approval.py writes, without a Lambda runtime."""
    payload = json.loads(params["body"])
    boto3.client("dynamodb").put_item(TableName=TABLE, Item={
        "pk": {"S": f"approval#{payload['name']}"}, "task_token": {"S": payload["token"]}, "kind": {"S": "update"},
        "waits_until": {"S": "2026-11-29T20:00:00+00:00"}})  # fmt: skip
    return AWSResponse("", 200, {}, None), {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(b"{}"), 2)}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    sfn_tasks.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.setup_default_session(region_name="us-east-1")
        boto3.DEFAULT_SESSION.events.register("before-call.lambda.Invoke", _approval_function)
        ddb = boto3.client("dynamodb")
        ddb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")  # fmt: skip
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(name="guardrail", definition=json.dumps(GATE),
                                           roleArn="arn:aws:iam::123456789012:role/sm")["stateMachineArn"]  # fmt: skip
        yield {"sfn": sfn, "ddb": ddb, "sts": boto3.client("sts"), "machine": machine}


def _start(aws: dict[str, Any], name: str) -> str:
    arn = aws["sfn"].start_execution(stateMachineArn=aws["machine"], name=name, input="{}")["executionArn"]
    deadline = time.monotonic() + 10
    while "Item" not in aws["ddb"].get_item(TableName=TABLE, Key={"pk": {"S": f"approval#{name}"}}):
        assert time.monotonic() < deadline, "the gate never stored its token"
        time.sleep(0.05)
    return arn


def _ended(aws: dict[str, Any], arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (described := aws["sfn"].describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return described


def test_approve_sends_who_and_why(aws):
    arn = _start(aws, "exec-a")
    assert waiting_for(aws["sfn"], arn) == "waiting for approval of the update: guardrail approve|reject exec-a"
    sent = decide(aws["sfn"], aws["ddb"], aws["sts"], TABLE, arn, True, "canary looked fine")
    described = _ended(aws, arn)
    assert described["status"] == "SUCCEEDED" and waiting_for(aws["sfn"], arn) is None
    approval = json.loads(described["output"])["approval"]
    assert approval == {"decision": "APPROVED", "kind": "update", "decided_by": caller(aws["sts"]),
                        "reason": "canary looked fine", "decided_at": sent["decided_at"]}  # fmt: skip
    with pytest.raises(OperatorError, match="not running: it ended SUCCEEDED"):  # a second answer
        decide(aws["sfn"], aws["ddb"], aws["sts"], TABLE, arn, False, None)


def test_reject_fails_the_task_with_a_json_cause(aws):
    arn = _start(aws, "exec-r")
    decide(aws["sfn"], aws["ddb"], aws["sts"], TABLE, arn, False, "not in the sale week")
    approval = json.loads(_ended(aws, arn)["output"])["approval"]
    assert approval["Error"] == "ApprovalRejected"
    cause = json.loads(approval["Cause"])  # moto drops SendTaskFailure's cause; local/sfn_tasks.py keeps it
    assert cause["reason"] == "not in the sale week" and cause["decided_by"].startswith("arn:aws:")


def test_abort_while_waiting_is_aborted_at_once_with_the_reason(aws):
    arn = _start(aws, "exec-x")
    started = time.monotonic()
    done = abort(aws["sfn"], aws["sts"], arn, "wrong model uploaded")
    described = _ended(aws, arn)
    assert time.monotonic() - started < 5  # not after the task's 30 s timeout (moto's own behaviour)
    assert described["status"] == "ABORTED"
    assert described["error"] == "GuardrailAborted"
    assert described["cause"] == done["cause"] == f"aborted by {done['aborted_by']}: wrong model uploaded"
    with pytest.raises(OperatorError, match="ended ABORTED"):
        abort(aws["sfn"], aws["sts"], arn, None)
    with pytest.raises(OperatorError, match="ended ABORTED"):
        decide(aws["sfn"], aws["ddb"], aws["sts"], TABLE, arn, True, None)


def test_an_execution_that_asked_nothing_cannot_be_approved(aws):
    arn = _start(aws, "exec-n")
    aws["ddb"].delete_item(TableName=TABLE, Key={"pk": {"S": "approval#exec-n"}})
    with pytest.raises(OperatorError, match="has not asked for an approval"):
        decide(aws["sfn"], aws["ddb"], aws["sts"], TABLE, arn, True, None)
    abort(aws["sfn"], aws["sts"], arn, None)


def test_resolve_by_name_arn_or_endpoint(aws):
    machine = aws["machine"]
    by_name = resolve(aws["sfn"], aws["ddb"], TABLE, machine, ENDPOINT, "exec-7")
    assert by_name == machine.replace(":stateMachine:", ":execution:") + ":exec-7"
    assert resolve(aws["sfn"], aws["ddb"], TABLE, machine, ENDPOINT, by_name) == by_name
    with pytest.raises(OperatorError, match="no guarded deployment is running"):
        resolve(aws["sfn"], aws["ddb"], TABLE, machine, ENDPOINT, ENDPOINT)
    arn = _start(aws, "exec-l")
    assert resolve(aws["sfn"], aws["ddb"], TABLE, machine, ENDPOINT, ENDPOINT) == arn  # the only running one
    aws["ddb"].put_item(TableName=TABLE, Item={"pk": {"S": f"lock#{ENDPOINT}"}, "execution_name": {"S": "exec-l"}})
    assert resolve(aws["sfn"], aws["ddb"], TABLE, machine, ENDPOINT, ENDPOINT) == arn  # the lock's holder
    abort(aws["sfn"], aws["sts"], arn, None)


def test_status_says_who_decided():
    from guardrail.cli import decided

    approved = {"approval": {"decision": "APPROVED", "decided_by": "arn:aws:sts::1:assumed-role/op/alice", "reason": "ok"}}
    assert decided(approved, {"status": "SUCCEEDED"}) == "approved by arn:aws:sts::1:assumed-role/op/alice: ok"
    rejected = {"approval": {"Error": "ApprovalRejected", "Cause": json.dumps({"decided_by": "arn:bob", "reason": "no"})}}
    assert decided(rejected, {"status": "SUCCEEDED"}) == "rejected by arn:bob: no"
    assert decided({"approval": {"Error": "States.Timeout", "Cause": ""}}, {}) == "rejected by timeout"
    assert decided({}, {"status": "ABORTED", "cause": "aborted by arn:carol: wrong data"}) == "aborted by arn:carol: wrong data"
    assert decided({}, {"status": "SUCCEEDED"}) is None and decided({"approval": "x"}, {}) is None
