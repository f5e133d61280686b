"""Approval gates (issue 15 §1), the Lambda side: the request stores the task token where `guardrail approve`
finds it and tells people what is asked, the evidence, the commands and how long it waits; parse_upload merges
deployment.json `approval` over the stack's defaults; notify names who decided and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from fn_support import TOPIC, FakeContext, load_state

from functions.config import settings_from
from functions.models import ApprovalDecision, ApprovalRequested, DeploymentRequest, NotifyOutput
from functions.steps.approval import approval_key
from functions.steps.parse_upload import approval_settings

TABLE = "guardrail-locks"
OPERATOR = "arn:aws:sts::123456789012:assumed-role/operator/alice"


@pytest.fixture
def inbox(aws):
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=TOPIC.rsplit(":", 1)[1])["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def read() -> list[dict]:
        return [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]

    return read


def _document(kind: str) -> dict:
    doc = load_state("notify")
    doc["execution"] = {"Name": "exec-approve-1", "Id": "arn:aws:states:us-east-1:123456789012:execution:sm:exec-approve-1"}
    doc["upload"]["approval"] = {"before_update": True, "before_promote": True, "timeout_seconds": 900, "on_timeout": "reject"}
    doc["endpoint_config"] = {"name": "bank-marketing-v2", "status": "created", "variant": "AllTraffic",
                              "live_config": "bank-marketing-v1"}  # fmt: skip
    if kind == "promote":
        doc["shadow"] = {"verdict": "PROMOTE", "experiment_name": "guardrail-endpoint-2-shadow", "sampling_percent": 100,
                         "starts_at": "2026-11-29T12:00:00+00:00", "ends_at": "2026-11-29T12:50:00+00:00",
                         "analysis": {"verdict": "PROMOTE", "reasons": ["shadow error rate 0.0 % <= production 0.1 %"],
                                      "production": {"invocations": 500}, "shadow": {"invocations": 498}}}  # fmt: skip
    return doc


def _request(kind: str, token: str = "tok-secret-123") -> ApprovalRequested:
    from functions.handlers.approval import handler

    payload = {"token": token, "kind": kind, "execution": "exec-approve-1", "snapshot": _document(kind)}
    return ApprovalRequested.model_validate(handler(payload, FakeContext()))


@pytest.mark.parametrize("kind", ["update", "promote"])
def test_request_stores_the_token_and_asks_with_the_evidence(inbox, kind):
    before = int(datetime.now(UTC).timestamp())
    out = _request(kind)
    assert out.key == approval_key("exec-approve-1") == "approval#exec-approve-1"
    assert before + 900 <= out.expires_at <= before + 905
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": out.key}})["Item"]
    assert item["task_token"]["S"] == "tok-secret-123" and item["kind"]["S"] == kind
    assert item["execution_arn"]["S"].endswith(":exec-approve-1") and item["on_timeout"]["S"] == "reject"
    assert int(item["expires_at"]["N"]) > out.expires_at  # kept a while after the wait: a late answer is "too late"
    [msg] = inbox()
    text = msg["Message"]
    assert msg["Subject"].startswith(f"Guardrail APPROVAL NEEDED: {kind} ")
    assert msg["MessageAttributes"]["outcome"]["Value"] == "APPROVAL_REQUESTED"
    assert "guardrail approve exec-approve-1" in text and "guardrail reject exec-approve-1" in text
    assert "guardrail abort exec-approve-1" in text
    assert "(900 s); then it will reject by default" in text
    assert "tok-secret-123" not in text  # the token resumes the workflow: never in an e-mail
    evidence = json.loads(text.split("Evidence so far:\n", 1)[1])
    if kind == "promote":
        assert evidence["verdict"] == "PROMOTE" and evidence["production"] == {"invocations": 500}
        # SageMaker ends the experiment by itself at its schedule's end: after that nothing can be promoted
        assert "The experiment's own schedule ends at 2026-11-29T13:40:00+00:00" in text
    else:
        assert evidence["serving_config"] == "bank-marketing-v1" and evidence["new_config"] == "bank-marketing-v2"
        assert evidence["strategy"] == "CANARY" and evidence["canary_percent"] == 25


def test_a_retried_request_replaces_the_token(inbox):
    _request("update", token="first")
    _request("update", token="second")
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": "approval#exec-approve-1"}})["Item"]
    assert item["task_token"]["S"] == "second"


def test_deployment_json_approval_overrides_the_stack_field_by_field():
    stack = settings_from({"APPROVAL_BEFORE_UPDATE": "true", "APPROVAL_TIMEOUT_SECONDS": "120"})
    assert approval_settings(DeploymentRequest(), stack).model_dump() == {
        "before_promote": False, "before_update": True, "timeout_seconds": 120, "on_timeout": "reject"}  # fmt: skip
    asked = DeploymentRequest.model_validate({"approval": {"before_update": False, "on_timeout": "approve"}})
    assert approval_settings(asked, stack).model_dump() == {
        "before_promote": False, "before_update": False, "timeout_seconds": 120, "on_timeout": "approve"}  # fmt: skip
    with pytest.raises(ValueError):
        DeploymentRequest.model_validate({"approval": {"on_timeout": "maybe"}})
    with pytest.raises(ValueError):
        DeploymentRequest.model_validate({"approval": {"before_update": "yes"}})  # strict: a JSON boolean


def test_decision_from_a_rejection_or_a_timeout():
    rejected = ApprovalDecision.model_validate(
        {"Error": "ApprovalRejected", "Cause": json.dumps({"decided_by": OPERATOR, "reason": "freeze", "kind": "update"})}
    )
    assert (rejected.decision, rejected.decided_by, rejected.reason, rejected.kind) == ("REJECTED", OPERATOR, "freeze", "update")
    timed_out = ApprovalDecision.model_validate({"Error": "States.Timeout", "Cause": ""})
    assert (timed_out.decision, timed_out.decided_by) == ("REJECTED", "timeout")
    by_hand = ApprovalDecision.model_validate({"Error": "ApprovalRejected", "Cause": "no, said Bob on the phone"})
    assert by_hand.reason == "no, said Bob on the phone"  # `aws stepfunctions send-task-failure` with plain text


def _notify(doc) -> NotifyOutput:
    from functions.handlers.notify import handler

    return NotifyOutput.model_validate(handler(doc, FakeContext()))


def test_not_approved_update_says_who_and_why(inbox):
    doc = _document("update") | {"outcome": "NOT_APPROVED"}
    doc.pop("deployment", None)
    doc["approval"] = {"Error": "ApprovalRejected", "Cause": json.dumps({"decided_by": OPERATOR, "reason": "sale week"})}
    out = _notify(doc)
    assert out.subject.startswith("Guardrail NOT_APPROVED: ")
    assert "the update was not approved and the endpoint was not touched" in out.payload.summary
    assert f"Rejected by {OPERATOR}: sale week." in out.payload.summary
    assert out.payload.details["approval"]["decided_by"] == OPERATOR


def test_not_approved_promotion_and_timeouts_say_so(inbox):
    doc = _document("promote") | {"outcome": "NOT_APPROVED", "approval": {"Error": "States.Timeout", "Cause": ""}}
    doc["shadow"]["actions"] = {"v2": "Remove", "v1": "Retain"}
    out = _notify(doc)
    assert "was not promoted" in out.payload.summary and "production keeps serving" in out.payload.summary
    assert "Rejected by the approval timeout's default (nobody answered in time)" in out.payload.summary


def test_an_approved_outcome_names_the_approver(inbox):
    doc = load_state("notify") | {"approval": {"decision": "APPROVED", "decided_by": OPERATOR, "reason": "LGTM"}}
    out = _notify(doc)
    assert out.outcome == "DEPLOYED" and f"Approved by {OPERATOR}: LGTM." in out.payload.summary
    garbage = load_state("notify") | {"approval": ["not", "a", "decision"]}
    assert _notify(garbage).outcome == "DEPLOYED"  # notify never fails on a strange document
