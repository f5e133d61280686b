"""acquire_lock / release_lock: one deployment per endpoint at a time, one execution per object version.

Items (table key `pk`): `lock#<endpoint>` {execution_name, expires_at} and `upload#<bucket>/<key>#<version>`
{execution_name, expires_at}. The lock is taken first, so an execution that gives up on a busy endpoint leaves no idempotency
record behind and a later retry of the same upload still runs.
"""

from __future__ import annotations

import math
import time

from functions.adapters import dynamodb
from functions.config import Settings
from functions.errors import EndpointLocked
from functions.models import LockState, ReleaseLockInput, ReleaseLockOutput, Upload

# Lambda retries (EndpointNotReady backs off up to ~6 min), the data check (<= 300 s), notify, release: slack
# on top of the waits the state machine is configured for.
LOCK_MARGIN_SECONDS = 1800
# "The maximum duration that you can set for an inference experiment is 30 days" (InferenceExperimentSchedule).
MAX_EXPERIMENT_SECONDS = 30 * 24 * 3600
ROLLBACK_SECONDS = 600  # SageMaker's rollback after its own timeout, or the watch's rollback (~4 min observed)


def lock_ttl_seconds(upload: Upload, settings: Settings) -> int:
    """How long this upload's execution can hold the endpoint (aws-audit #6), from the settings the state machine
    and SageMaker run with: the guarded update (the polls, or SageMaker's MaximumExecutionTimeout if longer,
    plus its rollback), the post-deployment watch (and its rollback), the shadow test (the experiment's schedule,
    at most 30 days, and the polls), plus a margin. Never below LOCK_TTL_SECONDS.

    Derived rather than renewed at every poll: renewing would give DynamoDB writes to the polling functions and
    still expire if a renewal failed; the cost of deriving is that an execution that dies without ReleaseLock
    (States.Runtime, aws-audit #15) holds the endpoint until this bound."""
    from functions.steps.deploy import build_deployment_config

    polls = settings.max_poll_attempts * settings.poll_interval_seconds
    timeout = build_deployment_config(
        upload.strategy,
        canary_percent=upload.canary_percent,
        linear_step_percent=upload.linear_step_percent,
        wait_interval_seconds=settings.wait_interval_seconds,
        termination_wait_seconds=settings.termination_wait_seconds,
        max_execution_timeout_seconds=settings.max_execution_timeout_seconds,
        alarm_names=["lock-ttl"],
    )["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"]
    deployment = max(polls, timeout + ROLLBACK_SECONDS) + settings.post_deployment_watch_seconds + ROLLBACK_SECONDS
    shadow = 0
    if upload.shadow.enabled:
        duration = upload.shadow.duration_seconds
        schedule = min(duration + max(600, duration), MAX_EXPERIMENT_SECONDS)
        poll = max(settings.poll_interval_seconds, math.ceil(duration / settings.max_poll_attempts))
        shadow = max(schedule, settings.max_poll_attempts * poll) + polls  # then Promote/Remove settles
    return max(settings.lock_ttl_seconds, deployment + shadow + LOCK_MARGIN_SECONDS)


# Free, or already ours (a Lambda retry), or expired (an execution that died without releasing).
_TAKE = "attribute_not_exists(pk) OR execution_name = :owner OR expires_at < :now"
_OURS = "execution_name = :owner"


def lock_key(endpoint: str) -> str:
    return f"lock#{endpoint}"


def acquire_lock(upload: Upload, owner: str, settings: Settings, now: float | None = None) -> LockState:
    table = settings.table_name or ""
    now_s = int(now if now is not None else time.time())
    key = lock_key(upload.endpoint_name)
    expires = now_s + lock_ttl_seconds(upload, settings)
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
