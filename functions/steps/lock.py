"""acquire_lock / release_lock: one deployment per endpoint at a time, in upload order, one execution per object
version.

Items (table key `pk`): `lock#<endpoint>` {execution_name, execution_arn, expires_at}, `queue#<endpoint>` (the
upload queue, functions.steps.upload_queue: an execution takes the lock only at the head of it) and
`upload#<bucket>/<key>#<version>` {execution_name, expires_at}. The lock is taken first, so an execution that
gives up on a busy endpoint leaves no idempotency record behind and a later retry of the same upload still runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

from functions.adapters import dynamodb, stepfunctions
from functions.config import Settings
from functions.errors import EndpointLocked, GuardrailError
from functions.models import LockState, ReleaseLockInput, ReleaseLockOutput, Upload
from functions.steps import upload_queue

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
    (States.Runtime, aws-audit #15) would hold the endpoint until this bound; the lock records the holder's
    execution ARN, so a holder whose execution has ended (DescribeExecution not RUNNING) is taken over at once,
    and the ExecutionEnded rule releases it as soon as the execution ends (issue 12)."""
    from functions.steps.deploy import execution_timeout, upload_deployment_config

    polls = settings.max_poll_attempts * settings.poll_interval_seconds
    timeout = execution_timeout(upload_deployment_config(upload, settings, ["lock-ttl"]))  # blue/green or rolling
    # the watch, plus the windows EVIDENCE_POLICY extend may add (issue 11 §3)
    watch = settings.post_deployment_watch_seconds * (1 + settings.evidence_max_extensions)
    deployment = max(polls, timeout + ROLLBACK_SECONDS) + watch + ROLLBACK_SECONDS
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


def _ended_holder(holder: dict[str, Any]) -> str | None:
    """Why the lock's holder can no longer release it (its execution ended: ABORTED, TIMED_OUT, FAILED... or is
    gone), or None while it runs or cannot be asked (a lock without an ARN keeps its TTL, as before issue 12)."""
    return _ended(str(holder.get("execution_arn") or ""), str(holder.get("execution_name", "?")))


def _ended(arn: str, name: str) -> str | None:
    if not arn:
        return None
    try:
        status = stepfunctions.execution_status(arn)
    except GuardrailError:  # cannot tell (no access, throttled past retries): treat as running, never steal
        return None
    if status == "RUNNING":
        return None
    return f"execution {name} is {status or 'gone'}"


def queue_expiry(now_s: int, settings: Settings) -> int:
    """The queue item outlives its tickets by the idempotency TTL: it remembers the last upload that started."""
    return now_s + settings.idempotency_ttl_seconds


def _ticket(upload: Upload, owner: str, execution_arn: str | None, now_s: int, expires: int) -> upload_queue.Ticket:
    return upload_queue.Ticket(
        execution=owner,
        key=upload.key,
        idempotency_key=upload.idempotency_key,
        event_time=upload.event_time,
        sequencer=upload.sequencer,
        event_id=upload.event_id,
        enqueued_at=now_s,
        expires_at=expires,
        supersede=upload.supersede,
        execution_arn=execution_arn,
    )


def acquire_lock(
    upload: Upload,
    owner: str,
    settings: Settings,
    now: float | None = None,
    execution_arn: str | None = None,
) -> LockState:
    table = settings.table_name or ""
    now_s = int(now if now is not None else time.time())
    key = lock_key(upload.endpoint_name)
    expires = now_s + lock_ttl_seconds(upload, settings)
    state = {"owner": owner, "lock_key": key, "idempotency_key": upload.idempotency_key, "expires_at": expires}
    # Wait for our turn in the endpoint's upload queue (issue 12 §4); a waiting ticket's TTL is its lock's,
    # refreshed at every poll.
    turn = upload_queue.take_turn(
        table,
        upload.endpoint_name,
        _ticket(upload, owner, execution_arn, now_s, expires),
        now_s,
        lambda t: _ended(t.execution_arn or "", t.execution) is None,
        queue_expiry(now_s, settings),
    )
    if turn.state == "QUEUED":
        return LockState(
            acquired=False, queued=True, position=turn.position, reason=turn.why,
            wait_seconds=settings.poll_interval_seconds, **state,
        )  # fmt: skip
    if turn.state == "SUPERSEDED":
        if dynamodb.get(table, upload.idempotency_key):  # this very object version was handled: a redelivery
            return LockState(acquired=False, duplicate=True, **state)
        by = turn.by.summary() if turn.by else None
        return LockState(acquired=False, superseded=True, superseded_by=by, reason=turn.why, **state)
    item: dict[str, str | int | float] = {
        "pk": key,
        "execution_name": owner,
        "expires_at": expires,
        "idempotency_key": upload.idempotency_key,
    }
    if execution_arn:
        item["execution_arn"] = execution_arn
    taken = dynamodb.put_if(table, item, _TAKE, {":owner": owner, ":now": now_s})
    taken_over_from = takeover_reason = None
    if not taken:
        holder = dynamodb.get(table, key) or {}
        takeover_reason = _ended_holder(holder) if holder else None
        # Take it only from that very holder (another execution may take it over at the same moment).
        if takeover_reason and dynamodb.put_if(
            table, item, "execution_name = :holder", {":holder": str(holder["execution_name"])}
        ):
            taken_over_from = str(holder["execution_name"])
            # an ended holder leaves the queue with its lock: no ticket outlives its execution
            upload_queue.remove(table, upload.endpoint_name, taken_over_from, queue_expiry(now_s, settings))
        else:
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
        upload_queue.remove(table, upload.endpoint_name, owner, queue_expiry(now_s, settings))
        return LockState(acquired=False, duplicate=True, **state)
    return LockState(
        acquired=True,
        **state,
        taken_over_from=taken_over_from,
        takeover_reason=takeover_reason if taken_over_from else None,
    )


def release(table: str, key: str, owner: str) -> bool:
    return dynamodb.delete_if(table, key, _OURS, {":owner": owner})


def dequeue(table: str, endpoint: str, owner: str, settings: Settings) -> bool:
    """Take the execution's ticket out of the endpoint's upload queue (every path; safe to repeat)."""
    return upload_queue.remove(table, endpoint, owner, queue_expiry(int(time.time()), settings))


def release_lock(doc: ReleaseLockInput, owner: str | None, settings: Settings) -> ReleaseLockOutput:
    """Release our own lock (a lock we do not hold - never taken, duplicate, another owner - is left alone), then
    leave the upload queue: the next upload's turn comes only once the lock is free."""
    table = settings.table_name or ""
    endpoint = doc.upload.endpoint_name if doc.upload is not None else None
    if doc.lock is not None:
        key, owner = doc.lock.lock_key, doc.lock.owner
        endpoint = endpoint or key.removeprefix("lock#")
    elif endpoint and owner:
        key = lock_key(endpoint)
    else:
        return ReleaseLockOutput(released=False, reason="no lock in the execution document")
    held = doc.lock is None or doc.lock.acquired
    released = held and release(table, key, owner)
    dequeued = dequeue(table, endpoint, owner, settings)
    if released:
        return ReleaseLockOutput(released=True, lock_key=key, dequeued=dequeued)
    reason = "not held by this execution (already released?)" if held else "this execution did not hold the lock"
    return ReleaseLockOutput(released=False, lock_key=key, dequeued=dequeued, reason=reason)
