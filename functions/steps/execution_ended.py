"""execution_ended: what runs when a Guardrail execution ends without finishing its own path (issue 12 §2).

An ABORTED (StopExecution) or TIMED_OUT execution runs no further state, and a FAILED one may have failed where
no Catch applies (States.Runtime). The ExecutionEnded EventBridge rule on the state machine's "Step Functions
Execution Status Change" events calls this step, which, for that execution:
1. stops a running shadow experiment it started (shadow Removed, production Retained: abort_shadow_test);
2. reads what the endpoint serves. An update in progress is left to SageMaker, which finishes the blue/green
   update or rolls it back itself when a rollback alarm fires (AutoRollbackConfiguration): stopping it half-way
   is not an AWS operation, and either end is a known config. The message says which one is live and which is
   pending;
3. releases the endpoint lock if this execution still holds it (conditional on the owner: safe to repeat) and
   takes its ticket out of the endpoint's upload queue (issue 12 §4: no ticket outlives its execution);
4. notifies ABORTED / TIMED_OUT / FAILED with the above, unless the execution had already sent that outcome
   (a FAILED execution normally notifies before its Fail state; notify dedups per execution and outcome).
Every part is idempotent: EventBridge may deliver the event more than once.
"""

from __future__ import annotations

import json
from typing import Any

from functions.adapters import dynamodb, sagemaker
from functions.config import Settings
from functions.errors import GuardrailError
from functions.models import ExecutionEndedInput, ExecutionEndedOutput, NotifyInput
from functions.steps.lock import dequeue, lock_key, release
from functions.steps.names import resource_names
from functions.steps.notify import notify, sent_key
from functions.steps.parse_upload import split_key
from functions.steps.shadow_test import abort_shadow_test

WHY = {
    "ABORTED": "was stopped (StopExecution) before it finished",
    "TIMED_OUT": "timed out before it finished",
    "FAILED": "failed before it could finish its own clean-up",
}


def _trigger(raw: str | None) -> dict[str, Any]:
    """The S3 "Object Created" event the execution started with (empty when unreadable)."""
    try:
        event = json.loads(raw or "{}")
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def _upload_view(trigger: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """endpoint/model/version and resource names from the trigger, as parse_upload derives them."""
    detail = trigger.get("detail") if isinstance(trigger.get("detail"), dict) else {}
    obj, bucket = detail.get("object") or {}, (detail.get("bucket") or {}).get("name")
    key = obj.get("key")
    if not (isinstance(key, str) and bucket):
        return None
    try:
        name, version = split_key(key, settings.model_prefix)
    except GuardrailError:
        return None
    identity = obj.get("version-id") or obj.get("etag")
    names = resource_names(settings.endpoint_name, name, version, f"upload#{bucket}/{key}#{identity}")
    return {
        "endpoint_name": settings.endpoint_name,
        "model_name": name,
        "model_version": version,
        "artifact_uri": f"s3://{bucket}/{key}",
        "names": names.model_dump(mode="json"),
    }


def endpoint_view(endpoint: str) -> dict[str, Any]:
    """What the endpoint serves now and what happens to it next."""
    described = sagemaker.describe_endpoint(endpoint)
    if described is None:
        return {"status": None, "serving": None, "summary": f"endpoint {endpoint} does not exist"}
    status = described["EndpointStatus"]
    serving = described.get("EndpointConfigName")
    pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    view = {"status": status, "serving": serving, "pending": pending}
    if status in ("Updating", "SystemUpdating", "RollingBack") and pending:
        view["summary"] = (
            f"endpoint {endpoint} is {status}: it serves {serving} and SageMaker is finishing the update to "
            f"{pending} by itself (a rollback alarm sends it back to {serving}); it ends on one of the two"
        )
    elif status == "Creating":
        view["summary"] = f"endpoint {endpoint} is Creating with {serving}; SageMaker finishes or fails it"
    else:
        view["summary"] = f"endpoint {endpoint} is {status} and serves {serving}"
    return view


def execution_ended(event: ExecutionEndedInput, settings: Settings) -> ExecutionEndedOutput:
    detail = event.detail
    name, status = detail.name, detail.status
    outcome = status if status in WHY else "FAILED"
    upload = _upload_view(_trigger(detail.input), settings)

    shadow = None
    if upload is not None:
        try:
            stopped = abort_shadow_test(upload["names"]["experiment"], f"execution {name} {status}")
            shadow = stopped.model_dump(mode="json")
        except GuardrailError as exc:  # reported, never blocks the lock release and the message
            shadow = {"error": exc.name, "reason": exc.message}

    try:
        endpoint = endpoint_view(settings.endpoint_name)
    except GuardrailError as exc:
        endpoint = {"status": None, "summary": f"endpoint {settings.endpoint_name} could not be read: {exc}"}

    table = settings.table_name or ""
    released = release(table, lock_key(settings.endpoint_name), name)
    dequeued = dequeue(table, settings.endpoint_name, name, settings)

    already = dynamodb.get(table, sent_key(name, outcome)) if outcome == "FAILED" else None
    if already:
        return ExecutionEndedOutput(
            execution=name, status=status, released=released, dequeued=dequeued, shadow=shadow, endpoint=endpoint,
            notify_skipped=f"{outcome} was already notified by the execution ({already.get('message_id')})",
        )  # fmt: skip
    stopped_by = None
    if status == "ABORTED" and (detail.error or detail.cause):
        # StopExecution's error and cause: who stopped it and why (`guardrail abort --reason`, issue 15 §2)
        stopped_by = {"error": detail.error, "cause": detail.cause}
        why = str(detail.cause or detail.error).rstrip(".")
        cause = f"The execution was stopped before it finished: {why}. {endpoint['summary']}."
    else:
        cause = f"The execution {WHY.get(status, status.lower())}. {endpoint['summary']}."
    if shadow and shadow.get("stopped"):
        cause += f" Shadow experiment {shadow.get('experiment_name')} stopped (shadow removed, production kept)."
    cause += " The endpoint lock was released." if released else " The endpoint lock was not held by it."
    if detail.error and not stopped_by:
        cause += f" Error: {detail.error}: {detail.cause or ''}".rstrip()
    message = notify(
        NotifyInput(
            outcome=outcome,
            execution=name,
            upload=upload,
            detail=_trigger(detail.input).get("detail"),
            error={"Error": f"Execution{status.title().replace('_', '')}", "Cause": cause},
            ended={"status": status, "endpoint": endpoint, "shadow": shadow, "lock_released": released,
                   **({"stopped_by": stopped_by} if stopped_by else {})},
        ),
        settings,
    )
    return ExecutionEndedOutput(
        execution=name, status=status, released=released, dequeued=dequeued, shadow=shadow, endpoint=endpoint,
        notified=message.message_id if not message.duplicate else None,
        notify_skipped="already notified (a redelivered event)" if message.duplicate else None,
    )  # fmt: skip
