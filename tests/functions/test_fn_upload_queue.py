"""Issue 12 §4 on moto DynamoDB: uploads for one endpoint take the lock in the order S3 received them (a FIFO per
endpoint, `queue#<endpoint>` in the lock table), and `supersede: true` ends an older waiting upload SUPERSEDED."""

from __future__ import annotations

import json

import boto3
import pytest
from fn_support import FakeContext, load_state, s3_event

from functions.config import load_settings
from functions.models import AcquireLockInput, ExecutionEndedInput, ReleaseLockInput, Upload
from functions.steps import upload_queue
from functions.steps.execution_ended import execution_ended
from functions.steps.lock import acquire_lock, lock_key, release_lock

TABLE = "guardrail-locks"
ENDPOINT = "guardrail-endpoint"


@pytest.fixture
def table(aws):
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


@pytest.fixture
def machine(table):
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="guardrail", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}),
    )["stateMachineArn"]  # fmt: skip
    return sfn, arn


def upload(version: str, second: int, sequencer: str = "00", *, key: str | None = None, supersede=False) -> Upload:
    """Version `version` of one model, whose S3 event says it was received at 12:00:<second>."""
    base = AcquireLockInput.model_validate(load_state("acquire_lock")).upload
    key = key or f"models/m/{version}/model.tar.gz"
    return base.model_copy(update={
        "key": key, "model_version": version, "idempotency_key": f"upload#b/{key}#{version}",
        "event_time": f"2026-11-29T12:00:{second:02d}Z", "sequencer": sequencer, "event_id": f"id-{version}",
        "supersede": supersede,
    })  # fmt: skip


def tickets(ddb) -> list[str]:
    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": upload_queue.queue_key(ENDPOINT)}}).get("Item")
    return [t["execution"] for t in json.loads(item["tickets"]["S"])] if item else []


def lock_holder(ddb) -> str | None:
    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": lock_key(ENDPOINT)}}).get("Item")
    return item["execution_name"]["S"] if item else None


def release(owner: str, lock) -> None:
    assert release_lock(ReleaseLockInput(lock=lock), owner, load_settings()).dequeued


def test_uploads_take_the_lock_in_s3_order_not_in_polling_order(table):
    s = load_settings()
    first = acquire_lock(upload("1", 0), "exec-1", s, now=1000)
    assert first.acquired and not first.queued
    # The third upload's execution asks before the second's: it still waits behind the second.
    third = acquire_lock(upload("3", 10), "exec-3", s, now=1010)
    second = acquire_lock(upload("2", 5), "exec-2", s, now=1011)
    assert third.queued and not third.acquired and third.position == 1
    assert second.queued and second.position == 1 and "exec-1" in (second.reason or "")
    assert acquire_lock(upload("3", 10), "exec-3", s, now=1012).position == 2
    assert second.wait_seconds == s.poll_interval_seconds
    assert tickets(table) == ["exec-1", "exec-2", "exec-3"]
    release("exec-1", first)
    assert tickets(table) == ["exec-2", "exec-3"] and lock_holder(table) is None
    assert acquire_lock(upload("3", 10), "exec-3", s, now=1020).queued  # not its turn: exec-2 is at the head
    second = acquire_lock(upload("2", 5), "exec-2", s, now=1021)
    assert second.acquired and lock_holder(table) == "exec-2"
    release("exec-2", second)
    assert acquire_lock(upload("3", 10), "exec-3", s, now=1030).acquired


def test_one_key_is_ordered_by_its_sequencer_of_any_length(table):
    # AWS: for one key the greater sequencer (zero-padded to equal length) is the later event; times may tie.
    s = load_settings()
    key = "models/m/same/model.tar.gz"
    acquire_lock(upload("0", 0), "exec-0", s, now=1000)
    newer = upload("b", 3, "0055AED6DCD90281E6", key=key)
    older = upload("a", 3, "55AED6DCD90281E5", key=key)
    assert acquire_lock(newer, "exec-new", s, now=1001).position == 1
    assert acquire_lock(older, "exec-old", s, now=1002).position == 1
    assert tickets(table) == ["exec-0", "exec-old", "exec-new"]
    assert upload_queue.padded("A") == upload_queue.padded("0a") > upload_queue.padded("9")


def test_across_keys_in_one_second_the_sequencer_then_the_event_id_break_the_tie(table):
    s = load_settings()
    acquire_lock(upload("0", 0), "exec-0", s, now=1000)
    acquire_lock(upload("y", 7, "0B"), "exec-y", s, now=1001)
    acquire_lock(upload("x", 7, "0A"), "exec-x", s, now=1002)
    acquire_lock(upload("z", 7, "0A"), "exec-z", s, now=1003)
    assert tickets(table) == ["exec-0", "exec-x", "exec-z", "exec-y"]


def test_a_waiting_poll_writes_only_to_renew_a_half_spent_ttl(table):
    s = load_settings()
    acquire_lock(upload("1", 0), "exec-1", s, now=1000)
    acquire_lock(upload("2", 5), "exec-2", s, now=1001)

    def version() -> str:
        return table.get_item(TableName=TABLE, Key={"pk": {"S": upload_queue.queue_key(ENDPOINT)}})["Item"]["version"]["N"]

    before = version()
    assert acquire_lock(upload("2", 5), "exec-2", s, now=1003).queued and version() == before
    ttl = acquire_lock(upload("2", 5), "exec-2", s, now=1004).expires_at - 1004
    later = 1001 + ttl // 2 + 1  # past half of the first TTL: renewed, so the ticket never expires while waiting
    assert acquire_lock(upload("2", 5), "exec-2", s, now=later).queued and version() != before
    # Past the first TTL of both: exec-1 (which never renewed) is dropped; exec-2 kept its renewed place.
    assert acquire_lock(upload("2", 5), "exec-2", s, now=1001 + ttl + 5).acquired and tickets(table) == ["exec-2"]


def test_an_upload_in_the_same_second_as_the_holder_waits_behind_it(table):
    # Two keys in one second: no AWS order. The tie-break would put "a" first, but "b" already took its turn.
    s = load_settings()
    holder = upload("b", 3, "0A").model_copy(update={"event_id": "id-z"})
    assert acquire_lock(holder, "exec-b", s, now=1000).acquired
    same_second = upload("a", 3, "0A").model_copy(update={"event_id": "id-a"})
    waiting = acquire_lock(same_second, "exec-a", s, now=1001)
    assert waiting.queued and not waiting.superseded and "exec-b" in (waiting.reason or "")
    assert acquire_lock(holder, "exec-b", s, now=1002).acquired  # the holder's retry: still its turn


def test_a_retried_acquire_keeps_its_place_and_its_lock(table):
    s = load_settings()
    first = acquire_lock(upload("1", 0), "exec-1", s, now=1000)
    acquire_lock(upload("2", 5), "exec-2", s, now=1001)
    again = acquire_lock(upload("1", 0), "exec-1", s, now=1002)  # a Lambda retry of the holder
    assert again.acquired and again.owner == first.owner
    assert tickets(table) == ["exec-1", "exec-2"]


def test_supersede_ends_an_older_waiting_upload(table):
    s = load_settings()
    first = acquire_lock(upload("1", 0), "exec-1", s, now=1000)
    assert acquire_lock(upload("2", 5), "exec-2", s, now=1005).queued
    assert acquire_lock(upload("3", 10, supersede=True), "exec-3", s, now=1010).queued
    middle = acquire_lock(upload("2", 5), "exec-2", s, now=1012)
    assert middle.superseded and not middle.acquired and not middle.queued
    assert middle.superseded_by and middle.superseded_by["key"] == "models/m/3/model.tar.gz"
    assert middle.superseded_by["execution"] == "exec-3" and "models/m/3/model.tar.gz" in (middle.reason or "")
    assert tickets(table) == ["exec-1", "exec-3"]  # it left the queue itself
    # The holder is never superseded: it deploys on; then the newest takes its turn.
    assert acquire_lock(upload("1", 0), "exec-1", s, now=1013).acquired
    release("exec-1", first)
    assert acquire_lock(upload("3", 10, supersede=True), "exec-3", s, now=1020).acquired


def test_without_supersede_on_the_newer_upload_the_older_one_waits(table):
    s = load_settings()
    acquire_lock(upload("1", 0), "exec-1", s, now=1000)
    acquire_lock(upload("2", 5, supersede=True), "exec-2", s, now=1005)  # its own flag says nothing about newer ones
    acquire_lock(upload("3", 10, supersede=False), "exec-3", s, now=1010)
    assert acquire_lock(upload("2", 5, supersede=True), "exec-2", s, now=1012).queued


def test_a_dead_newer_upload_supersedes_nothing_and_leaves_the_queue(machine):
    sfn, sm = machine
    s = load_settings()
    arns = {n: sfn.start_execution(stateMachineArn=sm, name=n, input="{}")["executionArn"] for n in ("e1", "e2", "e3")}
    acquire_lock(upload("1", 0), "e1", s, now=1000, execution_arn=arns["e1"])
    acquire_lock(upload("2", 5), "e2", s, now=1005, execution_arn=arns["e2"])
    acquire_lock(upload("3", 10, supersede=True), "e3", s, now=1010, execution_arn=arns["e3"])
    sfn.stop_execution(executionArn=arns["e3"])
    assert acquire_lock(upload("2", 5), "e2", s, now=1012, execution_arn=arns["e2"]).queued
    assert tickets(boto3.client("dynamodb")) == ["e1", "e2"]


def test_an_ended_head_is_dropped_and_its_lock_taken_over(machine):
    sfn, sm = machine
    s = load_settings()
    a = sfn.start_execution(stateMachineArn=sm, name="ea", input="{}")["executionArn"]
    b = sfn.start_execution(stateMachineArn=sm, name="eb", input="{}")["executionArn"]
    acquire_lock(upload("1", 0), "ea", s, now=1000, execution_arn=a)
    assert acquire_lock(upload("2", 5), "eb", s, now=1001, execution_arn=b).queued
    sfn.stop_execution(executionArn=a)  # ABORTED without ReleaseLock (and its ExecutionEnded not yet delivered)
    lock = acquire_lock(upload("2", 5), "eb", s, now=1002, execution_arn=b)
    assert lock.acquired and lock.taken_over_from == "ea" and "ABORTED" in (lock.takeover_reason or "")
    assert tickets(boto3.client("dynamodb")) == ["eb"]  # no ticket outlives its execution


def test_an_older_upload_arriving_after_a_newer_one_started_is_superseded(table):
    # EventBridge may deliver late: deploying the older version now would reverse the upload order.
    s = load_settings()
    newer = acquire_lock(upload("2", 5), "exec-2", s, now=1000)
    release("exec-2", newer)
    late = acquire_lock(upload("1", 0), "exec-1", s, now=1010)
    assert late.superseded and late.superseded_by["execution"] == "exec-2"
    assert "already took its turn" in (late.reason or "")
    assert tickets(table) == []
    # The newer upload's own redelivered event is a duplicate, not superseded.
    redelivered = acquire_lock(upload("2", 5), "exec-2b", s, now=1011)
    assert redelivered.duplicate and not redelivered.superseded


def test_release_dequeues_a_waiting_or_superseded_execution(table):
    s = load_settings()
    acquire_lock(upload("1", 0), "exec-1", s, now=1000)
    waiting = acquire_lock(upload("2", 5), "exec-2", s, now=1001)
    out = release_lock(ReleaseLockInput(lock=waiting), "exec-2", s)  # it gave up (FAILED EndpointLocked)
    assert not out.released and out.dequeued
    assert tickets(table) == ["exec-1"]
    # The handler path, from the execution document (`upload` and `execution` only: a Catch before AcquireLock)
    from functions.handlers import release_lock as handler

    doc = load_state("acquire_lock") | {"execution": {"Name": "exec-1"}}
    assert handler.handler(doc, FakeContext())["dequeued"] is True
    assert tickets(table) == []


def test_execution_ended_removes_its_ticket(table, monkeypatch):
    from functions.errors import Throttled
    from functions.steps import execution_ended as ended_step

    def no_experiment(name, why):
        raise Throttled(f"cannot read {name}")  # moto has no inference experiments

    monkeypatch.setattr(ended_step, "abort_shadow_test", no_experiment)
    s = load_settings()
    boto3.client("sns").create_topic(Name=s.topic_arn.rsplit(":", 1)[1])
    acquire_lock(upload("1", 0), "exec-1", s, now=1000)
    acquire_lock(upload("2", 5), "exec-2", s, now=1001)
    event = s3_event("models/m/2/model.tar.gz")
    ended = ExecutionEndedInput.model_validate({
        "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "detail": {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:sm:exec-2", "name": "exec-2",
                   "status": "ABORTED", "input": json.dumps(event)},
    })  # fmt: skip
    out = execution_ended(ended, s)
    assert out.dequeued and tickets(table) == ["exec-1"]


def test_a_concurrent_change_is_retried_not_lost(table, monkeypatch):
    s = load_settings()
    acquire_lock(upload("1", 0), "exec-1", s, now=1000)
    real_get = upload_queue.dynamodb.get
    raced = []

    def get_then_race(table_name, pk):
        item = real_get(table_name, pk)
        if pk.startswith("queue#") and not raced:  # another execution enqueues between our read and our write
            raced.append(1)
            acquire_lock(upload("3", 10), "exec-3", s, now=1001)
        return item

    monkeypatch.setattr(upload_queue.dynamodb, "get", get_then_race)
    assert acquire_lock(upload("2", 5), "exec-2", s, now=1002).position == 1
    monkeypatch.setattr(upload_queue.dynamodb, "get", real_get)
    assert tickets(table) == ["exec-1", "exec-2", "exec-3"]


def test_the_superseded_message_names_the_newer_upload():
    from functions.models import NotifyInput
    from functions.steps.notify import summary_for

    why = "a newer upload models/m/3/model.tar.gz (execution exec-3) supersedes it (supersede: true)"
    doc = NotifyInput.model_validate({"outcome": "SUPERSEDED", "error": {"Error": "Superseded", "Cause": why}})
    text, _ = summary_for(doc, "m/2", ENDPOINT)
    assert "m/2 was not deployed to guardrail-endpoint" in text and "models/m/3/model.tar.gz" in text


@pytest.fixture
def bucket(aws):
    from fn_support import BUCKET

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_parse_upload_records_the_event_order_and_supersede(bucket, monkeypatch):
    from fn_support import put_model_files

    from functions.config import reset_settings
    from functions.models import ParseUploadInput
    from functions.steps.parse_upload import parse_upload

    asked = put_model_files(bucket, "xgb-best", "7", deployment={"supersede": True})
    plain = put_model_files(bucket, "xgb-best", "8")
    event = s3_event(asked, version_id=None) | {"time": "2026-11-29T12:00:05Z"}
    event["detail"]["object"]["sequencer"] = "0055AED6DCD90281E5"
    out = parse_upload(ParseUploadInput.model_validate(event), load_settings())
    assert (out.event_time, out.sequencer, out.event_id) == ("2026-11-29T12:00:05Z", "0055AED6DCD90281E5", event["id"])
    assert out.supersede is True
    assert parse_upload(ParseUploadInput.model_validate(s3_event(plain, version_id=None)), load_settings()).supersede is False
    monkeypatch.setenv("SUPERSEDE", "true")  # the template's Supersede parameter
    reset_settings()
    assert parse_upload(ParseUploadInput.model_validate(s3_event(plain, version_id=None)), load_settings()).supersede is True
