"""Issue 12 on moto: notifications are deduplicated per execution and outcome (Notify is retried after a crash),
and a lock whose execution has ended is taken over at once instead of after its TTL (F09b, F09c)."""

from __future__ import annotations

import json

import boto3
import pytest
from fn_support import TOPIC, FakeContext, load_state

from functions import errors
from functions.config import load_settings
from functions.models import AcquireLockInput, NotifyOutput
from functions.steps.lock import acquire_lock

TABLE = "guardrail-locks"


def _table() -> None:
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def sent(aws):
    """Messages published to the topic (read back through an SQS subscription)."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=TOPIC.rsplit(":", 1)[1])["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    seen: list[dict] = []

    def read() -> list[dict]:
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for m in batch:
                seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        return seen

    return read


def _notify(doc) -> NotifyOutput:
    from functions.handlers.notify import handler

    return NotifyOutput.model_validate(handler(doc, FakeContext()))


def test_a_retried_notify_publishes_once_per_execution_and_outcome(sent):
    _table()
    doc = load_state("notify")
    first = _notify(doc)
    again = _notify(doc)  # Step Functions retried after the worker crashed past the publish
    assert [m["Subject"] for m in sent()] == [first.subject]
    assert again.message_id == first.message_id and again.duplicate and not first.duplicate
    failed = _notify({**doc, "outcome": "FAILED"})  # another outcome of the same execution is news
    assert len(sent()) == 2 and not failed.duplicate


def test_notify_without_its_dedup_record_still_publishes(sent):
    # No table (or no access to it): a notification sent twice beats one never sent.
    doc = load_state("notify")
    _notify(doc)
    _notify(doc)
    assert len(sent()) == 2


# --- lock takeover ---------------------------------------------------------------------------------------
@pytest.fixture
def machine(aws):
    _table()
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="guardrail", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}),
    )["stateMachineArn"]  # fmt: skip
    return sfn, arn


def _upload(version: str):
    doc = load_state("acquire_lock")
    doc["upload"]["idempotency_key"] = f"upload#b/models/m/1/model.tar.gz#{version}"
    return AcquireLockInput.model_validate(doc).upload


def _start(sfn, machine: str, name: str) -> str:
    return sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]


def test_the_lock_records_the_execution_arn(machine):
    sfn, sm = machine
    arn = _start(sfn, sm, "exec-a")
    doc = load_state("acquire_lock") | {"execution": {"Name": "exec-a", "Id": arn}}
    parsed = AcquireLockInput.model_validate(doc)
    assert parsed.execution == "exec-a" and parsed.execution_arn == arn
    lock = acquire_lock(parsed.upload, "exec-a", load_settings(), now=1000, execution_arn=arn)
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": lock.lock_key}})["Item"]
    assert item["execution_arn"]["S"] == arn


def test_a_lock_held_by_an_ended_execution_is_taken_over_at_once(machine):
    sfn, sm = machine
    dead = _start(sfn, sm, "exec-a")
    settings = load_settings()
    acquire_lock(_upload("v1"), "exec-a", settings, now=1000, execution_arn=dead)
    live = _start(sfn, sm, "exec-b")
    with pytest.raises(errors.EndpointLocked, match="exec-a"):  # the holder still runs: wait
        acquire_lock(_upload("v2"), "exec-b", settings, now=1001, execution_arn=live)
    sfn.stop_execution(executionArn=dead, cause="operator")  # ABORTED: nothing after it runs
    lock = acquire_lock(_upload("v2"), "exec-b", settings, now=1002, execution_arn=live)
    assert lock.acquired and lock.taken_over_from == "exec-a"
    assert "ABORTED" in (lock.takeover_reason or "")


def test_a_lock_of_an_unknown_execution_is_kept_until_its_ttl(machine):
    # No ARN recorded (a lock written before this change): nothing to ask, the TTL decides as before.
    settings = load_settings()
    acquire_lock(_upload("v1"), "exec-old", settings, now=1000)
    with pytest.raises(errors.EndpointLocked):
        acquire_lock(_upload("v2"), "exec-b", settings, now=1001, execution_arn=None)
