"""acquire_lock / release_lock against moto DynamoDB."""

from __future__ import annotations

import boto3
import pytest
from fn_support import FakeContext, load_state

from functions import errors
from functions.config import load_settings
from functions.models import AcquireLockInput, LockState, ReleaseLockInput
from functions.steps.lock import acquire_lock, lock_ttl_seconds, release_lock

TABLE = "guardrail-locks"


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


def _upload(version: str = "v1"):
    doc = load_state("acquire_lock")
    doc["upload"]["idempotency_key"] = f"upload#b/models/m/1/model.tar.gz#{version}"
    return AcquireLockInput.model_validate(doc).upload


def test_acquire_then_duplicate_then_release(table) -> None:
    settings = load_settings()
    first = acquire_lock(_upload(), "exec-a", settings, now=1000)
    assert first.acquired and not first.duplicate and first.expires_at == 1000 + lock_ttl_seconds(_upload(), settings)
    # A retried invocation of the same execution gets the same answer.
    assert acquire_lock(_upload(), "exec-a", settings, now=1001).acquired
    released = release_lock(ReleaseLockInput(lock=first), "exec-a", settings)
    assert released.released
    again = release_lock(ReleaseLockInput(lock=first), "exec-a", settings)
    assert not again.released and "already released" in again.reason
    # Same object version from another execution: a duplicate, and the endpoint lock is left free.
    dup = acquire_lock(_upload(), "exec-b", settings, now=1002)
    assert dup.duplicate and not dup.acquired
    assert "Item" not in table.get_item(TableName=TABLE, Key={"pk": {"S": dup.lock_key}})
    assert not release_lock(ReleaseLockInput(lock=dup), "exec-b", settings).released


def test_locked_by_another_execution(table) -> None:
    settings = load_settings()
    acquire_lock(_upload("v1"), "exec-a", settings, now=1000)
    waiting = acquire_lock(_upload("v2"), "exec-b", settings, now=1001)  # its turn comes after exec-a (issue 12 §4)
    assert waiting.queued and not waiting.acquired and "exec-a" in (waiting.reason or "")
    # The loser wrote no idempotency record: once the lock is free its upload still runs.
    assert "Item" not in table.get_item(TableName=TABLE, Key={"pk": {"S": _upload("v2").idempotency_key}})
    # Another execution cannot release a lock it does not hold.
    upload_doc = {"upload": load_state("acquire_lock")["upload"]}
    assert not release_lock(ReleaseLockInput.model_validate(upload_doc), "exec-b", settings).released
    assert acquire_lock(_upload("v2"), "exec-b", settings, now=1000 + lock_ttl_seconds(_upload("v1"), settings) + 1).acquired


def test_handlers_use_execution_name(table) -> None:
    from functions.handlers import acquire_lock as acquire_handler
    from functions.handlers import release_lock as release_handler

    doc = load_state("acquire_lock")
    lock = LockState.model_validate(acquire_handler.handler(doc, FakeContext()))
    assert lock.owner == "example-execution-0001" and lock.acquired
    doc["lock"] = lock.model_dump(mode="json")
    assert release_handler.handler(doc, FakeContext())["released"] is True
    assert release_handler.handler(doc, FakeContext())["released"] is False
    # Catch path before acquire_lock ran: no lock key, nothing to release, no failure.
    assert release_handler.handler({"execution": {"Name": "x"}}, FakeContext())["released"] is False


def test_acquire_needs_execution_name(table) -> None:
    from functions.handlers import acquire_lock as acquire_handler

    doc = load_state("acquire_lock")
    doc.pop("execution")
    with pytest.raises(errors.InvalidInput, match="execution name"):
        acquire_handler.handler(doc, FakeContext())
