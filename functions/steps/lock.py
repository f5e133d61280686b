"""acquire_lock / release_lock: one deployment per endpoint at a time, one execution per object version.

Items (table key `pk`): `lock#<endpoint>` {execution_name, expires_at} and `upload#<bucket>/<key>#<version>`
{execution_name, expires_at}. The lock is taken first, so an execution that gives up on a busy endpoint leaves no idempotency
record behind and a later retry of the same upload still runs.
"""

from __future__ import annotations

import time

from functions.adapters import dynamodb
from functions.config import Settings
from functions.errors import EndpointLocked
from functions.models import LockState, ReleaseLockInput, ReleaseLockOutput, Upload

# Free, or already ours (a Lambda retry), or expired (an execution that died without releasing).
_TAKE = "attribute_not_exists(pk) OR execution_name = :owner OR expires_at < :now"
_OURS = "execution_name = :owner"


def lock_key(endpoint: str) -> str:
    return f"lock#{endpoint}"


def acquire_lock(upload: Upload, owner: str, settings: Settings, now: float | None = None) -> LockState:
    table = settings.table_name or ""
    now_s = int(now if now is not None else time.time())
    key = lock_key(upload.endpoint_name)
    expires = now_s + settings.lock_ttl_seconds
    taken = dynamodb.put_if(
        table,
        {
            "pk": key,
            "execution_name": owner,
            "expires_at": expires,
            "idempotency_key": upload.idempotency_key,
        },
        _TAKE,
        {":owner": owner, ":now": now_s},
    )
    if not taken:
        holder = dynamodb.get(table, key) or {}
        raise EndpointLocked(
            f"endpoint {upload.endpoint_name} is locked by execution {holder.get('execution_name', '?')} "
            f"(for {holder.get('idempotency_key', '?')})"
        )
    first = dynamodb.put_if(
        table,
        {
            "pk": upload.idempotency_key,
            "execution_name": owner,
            "expires_at": now_s + settings.idempotency_ttl_seconds,
        },
        "attribute_not_exists(pk) OR " + _OURS,
        {":owner": owner},
    )
    if not first:
        # Someone already handled this exact object version: give the endpoint back and end quietly.
        release(table, key, owner)
        return LockState(
            acquired=False,
            duplicate=True,
            owner=owner,
            lock_key=key,
            idempotency_key=upload.idempotency_key,
            expires_at=expires,
        )
    return LockState(
        acquired=True,
        duplicate=False,
        owner=owner,
        lock_key=key,
        idempotency_key=upload.idempotency_key,
        expires_at=expires,
    )


def release(table: str, key: str, owner: str) -> bool:
    return dynamodb.delete_if(table, key, _OURS, {":owner": owner})


def release_lock(doc: ReleaseLockInput, owner: str | None, settings: Settings) -> ReleaseLockOutput:
    """Release our own lock; a lock we do not hold (never taken, duplicate, another owner) is left alone."""
    if doc.lock is not None:
        key, owner = doc.lock.lock_key, doc.lock.owner
        if not doc.lock.acquired:
            return ReleaseLockOutput(
                released=False, lock_key=key, reason="this execution did not hold the lock"
            )
    elif doc.upload is not None and owner:
        key = lock_key(doc.upload.endpoint_name)
    else:
        return ReleaseLockOutput(released=False, reason="no lock in the execution document")
    if release(settings.table_name or "", key, owner):
        return ReleaseLockOutput(released=True, lock_key=key)
    return ReleaseLockOutput(
        released=False, lock_key=key, reason="not held by this execution (already released?)"
    )
