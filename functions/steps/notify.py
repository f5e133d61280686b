"""notify: one SNS message per outcome, built from whatever the (possibly partial) document holds."""

from __future__ import annotations

import contextlib
import json
import os
import re
from datetime import UTC, datetime
from typing import Any

from functions.adapters import dynamodb, sns
from functions.config import Settings
from functions.errors import GuardrailError
from functions.models import ApprovalDecision, NotificationPayload, NotifyInput, NotifyOutput

MAX_SUBJECT = 100
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")  # SNS subjects: printable ASCII, no line breaks

HEADLINES = {
    "DEPLOYED": "deployed",
    "DEPLOYED_UNVERIFIED": "deployed without enough traffic to verify it",
    "PROMOTED": "promoted from shadow",
    "ROLLED_BACK": "rolled back",
    "REJECTED": "rejected by the quality gate",
    "SHADOW_REJECTED": "rejected by the shadow test",
    "FAILED": "deployment failed",
    "DUPLICATE": "duplicate upload ignored",
    "SUPERSEDED": "superseded by a newer upload",
    "INCONCLUSIVE": "shadow test inconclusive",
    "DRIFT": "data drift detected",
    "DATA_QUALITY": "data quality problem",
    "ABORTED": "execution stopped",
    "TIMED_OUT": "execution timed out",
    "CHANGED_EXTERNALLY": "endpoint changed by someone else",
    "NOT_APPROVED": "not approved",
}


def _decision(doc: NotifyInput) -> dict[str, Any] | None:
    """The approval gate's decision (who, why), when there was one (issue 15 §1)."""
    if not isinstance(doc.approval, dict):
        return None
    try:
        decided = ApprovalDecision.model_validate(doc.approval).model_dump(exclude_none=True)
    except ValueError:
        return None
    decided.pop("cause", None)  # lifted into decided_by / reason
    return decided


def _decided_text(decision: dict[str, Any]) -> str:
    who = decision.get("decided_by") or "unknown"
    verb = "Approved" if decision["decision"] == "APPROVED" else "Rejected"
    if who == "timeout":
        text = f"{verb} by the approval timeout's default (nobody answered in time)"
    else:
        text = f"{verb} by {who}"
    return text + (f": {decision['reason']}." if decision.get("reason") else ".")


# The console's domain per partition (AWS General Reference, "AWS Management Console endpoints"; the page path
# is the console's own, which AWS does not document: the execution's details page as the console links it).
CONSOLE = {"aws": "https://{region}.console.aws.amazon.com", "aws-cn": "https://{region}.console.amazonaws.cn",
           "aws-us-gov": "https://{region}.console.amazonaws-us-gov.com"}


def console_url(execution_arn: str | None, endpoint_url: str | None = None) -> str | None:
    """The execution in the Step Functions console; None off AWS (the SDK pointed at another endpoint, as the
    local cloud's AWS_ENDPOINT_URL: no console shows that execution) or without an ARN."""
    if not execution_arn or endpoint_url:
        return None
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[2] != "states" or parts[5] != "execution" or parts[1] not in CONSOLE:
        return None
    base = CONSOLE[parts[1]].format(region=parts[3])
    return f"{base}/states/home?region={parts[3]}#/v2/executions/details/{execution_arn}"


def _get(data: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _model_id(doc: NotifyInput) -> str:
    name, version = _get(doc.upload, "model_name"), _get(doc.upload, "model_version")
    if name and version:
        return f"{name}/{version}"
    key = _get(doc.detail, "object", "key")
    return str(key) if key else "unknown"


def subject_for(outcome: str, model: str, endpoint: str) -> str:
    text = f"Guardrail {outcome}: {model} on {endpoint}"
    text = _UNPRINTABLE.sub("?", text)
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 3] + "..."


def _served(doc: NotifyInput) -> str | None:
    """How many requests each fleet served during the update and its watch (issue 11 §3)."""
    evidence = _get(doc.watch, "evidence")
    if not isinstance(evidence, dict):
        return None
    text = f"The new fleet served {evidence.get('new_fleet_requests')} request(s)"
    if evidence.get("old_fleet_requests") is not None:
        text += f", the old fleet {evidence['old_fleet_requests']}"
    return text + f" (at least {evidence.get('min_requests')} needed to verify the model)."


def summary_for(doc: NotifyInput, model: str, endpoint: str) -> tuple[str, dict[str, Any]]:
    """A one-paragraph human summary and the details behind it, per outcome."""
    outcome = doc.outcome
    details: dict[str, Any] = {}
    strategy = _get(doc.upload, "strategy")
    served = _served(doc)
    if outcome in ("DEPLOYED", "DEPLOYED_UNVERIFIED"):
        details = {
            "strategy": strategy,
            "endpoint_config": _get(doc.deployment, "target_config"),
            "mode": _get(doc.deployment, "mode"),
            "alarms": _get(doc.watch, "alarms"),
            "evidence": _get(doc.watch, "evidence"),
        }
        text = f"{model} now serves all traffic on {endpoint} ({_get(doc.deployment, 'mode') or 'deployment'}"
        text += f", {strategy})." if strategy else ")."
        if outcome == "DEPLOYED_UNVERIFIED":
            text += " It was NOT verified: too few requests reached it, and the evidence policy accepts that."
        if served:
            text += f" {served}"
    elif outcome == "ROLLED_BACK":
        firing = _get(doc.deployment, "alarms_in_alarm") or _get(doc.watch, "alarms_in_alarm") or []
        missing = _get(doc.watch, "missing_alarms") or []
        reason = _get(doc.deployment, "failure_reason") or (
            f"guardrail alarm(s) {', '.join(map(str, missing))} were deleted during the deployment; an unwatched "
            "model is not kept"
            if missing
            else "a guardrail alarm fired after the deployment" if _get(doc.watch, "rolled_back") else None
        )
        if _get(doc.watch, "evidence_action") == "ROLLBACK" and not (
            firing or missing or _get(doc.deployment, "failure_reason")
        ):
            reason = "too few requests reached the new fleet to verify it (no evidence, no promotion)"
        if served:
            reason = f"{reason}. {served}" if reason else served
        details = {
            "failure_reason": reason,
            "alarms_in_alarm": firing,
            "restored_config": _get(doc.deployment, "previous_config"),
            "evidence": _get(doc.watch, "evidence"),
        }
        text = f"The update of {endpoint} to {model} was rolled back; the previous model still serves."
        if reason:
            text += f" Reason: {reason}"
        if firing:
            text += f" Alarms: {', '.join(map(str, firing))}."
    elif outcome in ("PROMOTED", "SHADOW_REJECTED", "INCONCLUSIVE"):
        analysis = _get(doc.shadow, "analysis") or {}
        actions = _get(doc.shadow, "actions") or {}
        details = {
            "verdict": _get(doc.shadow, "verdict"),
            "reasons": analysis.get("reasons"),
            "production": analysis.get("production"),
            "shadow": analysis.get("shadow"),
            "evidence": analysis.get("details"),  # the numbers behind the verdict (samples, intervals, margins)
            "actions": actions or None,
            "experiment": _get(doc.shadow, "experiment_name"),
        }
        # an inconclusive test ends with the configured default, which may promote as well as remove
        default = "promoted" if "Promote" in actions.values() else "removed"
        verb = {
            "PROMOTED": "passed its shadow test and was promoted",
            "SHADOW_REJECTED": "failed its shadow test and was removed",
            "INCONCLUSIVE": f"had an inconclusive shadow test and was {default} (the configured default)",
        }[outcome]
        text = f"{model} {verb} on {endpoint}."
        if analysis.get("reasons"):
            text += " " + "; ".join(map(str, analysis["reasons"]))
    elif outcome == "CHANGED_EXTERNALLY":
        serving = _get(doc.watch, "serving_config")
        details = {"serving_config": serving, "deployed_config": _get(doc.deployment, "target_config")}
        text = (
            f"{model} was deployed to {endpoint}, but during the post-deployment watch someone else changed the "
            f"endpoint: it now serves {serving or 'nothing (the endpoint is gone)'}. Guardrail rolled nothing back."
        )
    elif outcome == "REJECTED":
        details = {"gate": doc.gate}
        text = f"{model} was not deployed to {endpoint}."
        if doc.error:
            text += f" {doc.error.message}"
    elif outcome == "DUPLICATE":
        text = f"The upload of {model} was already handled; nothing was done."
    elif outcome == "SUPERSEDED":  # issue 12 §4: the cause names the newer upload (AcquireLock's reason)
        text = f"{model} was not deployed to {endpoint}, which was not touched for it"
        text += f": {doc.error.message}." if doc.error else "."
    elif outcome == "NOT_APPROVED":
        kind = (_decision(doc) or {}).get("kind") or ("promote" if doc.shadow else "update")
        details = {"kind": kind, "actions": _get(doc.shadow, "actions"), "experiment": _get(doc.shadow, "experiment_name")}
        text = (
            f"{model} was not promoted on {endpoint}: the shadow was removed and production keeps serving."
            if kind == "promote"
            else f"{model} was not deployed to {endpoint}: the update was not approved and the endpoint was not touched."
        )
    else:
        text = f"{model} on {endpoint}: {HEADLINES.get(outcome, outcome.lower())}."
        if doc.error:
            text += f" {doc.error.error}: {doc.error.message}"
        if doc.ended:  # ExecutionEnded: the cause already says what the endpoint serves now
            details = dict(doc.ended)
        elif outcome == "FAILED":
            text += " The endpoint was left as it was unless stated otherwise."
    decision = _decision(doc)
    if decision:
        text += " " + _decided_text(decision)
        details["approval"] = decision
    if outcome in ("DEPLOYED", "DEPLOYED_UNVERIFIED", "PROMOTED"):
        cleanup, cleanup_details = _housekeeping(doc)
        text += f" {cleanup}" if cleanup else ""
        details.update(cleanup_details)
    return text, {k: v for k, v in details.items() if v is not None}


def _housekeeping(doc: NotifyInput) -> tuple[str | None, dict[str, Any]]:
    """What Housekeeping deleted, skipped or failed to do (issue 14 §6); it never changes the outcome."""
    if doc.housekeeping_error:
        error = doc.housekeeping_error
        return (
            f"Housekeeping failed ({error.error}: {error.message}); the deployment stands, old alarms and "
            "configs were left in place.",
            {"housekeeping_error": {"error": error.error, "cause": error.message}},
        )
    done = doc.housekeeping or {}
    if not done:
        return None, {}
    if done.get("skipped"):
        return f"Housekeeping deleted nothing: {done['skipped']}.", {"housekeeping": done}
    counts = [(len(done.get(k) or []), what) for k, what in (
        ("deleted_alarms", "alarm(s) of retired configs"), ("deleted_configs", "endpoint config(s)"),
        ("deleted_models", "model(s)"))]
    kept = f"keeping {done.get('keep_versions')} version(s) for rollback"
    if any(n for n, _ in counts):
        text = "Housekeeping deleted " + ", ".join(f"{n} {what}" for n, what in counts if n) + f", {kept}."
    else:
        text = f"Housekeeping: nothing to delete ({kept})."
    if done.get("errors"):
        text += f" {len(done['errors'])} deletion(s) failed: {'; '.join(map(str, done['errors'][:3]))}."
    return text, {"housekeeping": done}


def notify(doc: NotifyInput, settings: Settings, now: datetime | None = None) -> NotifyOutput:
    settings.require("topic_arn")
    outcome = doc.outcome.upper() or "FAILED"
    doc = doc.model_copy(update={"outcome": outcome})
    endpoint = str(_get(doc.upload, "endpoint_name") or settings.endpoint_name)
    model = _model_id(doc)
    summary, details = summary_for(doc, model, endpoint)
    payload = NotificationPayload(
        outcome=outcome,
        endpoint=endpoint,
        model=model,
        execution=doc.execution,
        execution_arn=doc.execution_arn,
        console_url=console_url(doc.execution_arn, os.environ.get("AWS_ENDPOINT_URL")),
        artifact=_get(doc.upload, "artifact_uri"),
        summary=summary,
        error=doc.error.error if doc.error else None,
        cause=doc.error.message if doc.error else None,
        details=details,
        timestamp=(now or datetime.now(UTC)).isoformat(),
    )
    subject = subject_for(outcome, model, endpoint)
    body = "\n".join(
        [
            f"Guardrail: {model} {HEADLINES.get(outcome, outcome.lower())}.",
            "",
            summary,
            "",
            f"Endpoint:  {endpoint}",
            f"Model:     {model}",
            f"Artifact:  {payload.artifact or '-'}",
            f"Execution: {doc.execution_arn or doc.execution or '-'}",
            *([f"Console:   {payload.console_url}"] if payload.console_url else []),
            "",
            "JSON payload:",
            json.dumps(payload.model_dump(mode="json"), indent=2, sort_keys=True, default=str),
        ]
    )
    sent = _already_sent(doc.execution, outcome, settings)
    if sent:  # a retried invocation (the worker crashed after publishing): people were told already
        return NotifyOutput(message_id=sent, outcome=outcome, subject=subject, payload=payload, duplicate=True)
    message_id = sns.publish(
        settings.topic_arn or "", subject, body, {"outcome": outcome, "endpoint": endpoint, "model": model}
    )
    _record_sent(doc.execution, outcome, message_id, settings)
    return NotifyOutput(message_id=message_id, outcome=outcome, subject=subject, payload=payload)


def sent_key(execution: str, outcome: str) -> str:
    return f"notify#{execution}#{outcome}"


def _already_sent(execution: str | None, outcome: str, settings: Settings) -> str | None:
    """The message id of this execution's earlier message with this outcome (Notify is retried after a crash).
    The record is best effort: when the table cannot be read, publish (twice is better than never)."""
    if not (execution and settings.table_name):
        return None
    try:
        item = dynamodb.get(settings.table_name, sent_key(execution, outcome))
    except GuardrailError:
        return None
    return str(item["message_id"]) if item and item.get("message_id") else None


def _record_sent(execution: str | None, outcome: str, message_id: str, settings: Settings) -> None:
    if not (execution and settings.table_name):
        return
    # Already published: a missing record only risks a duplicate on a retry.
    with contextlib.suppress(GuardrailError):
        dynamodb.put_if(
            settings.table_name,
            {
                "pk": sent_key(execution, outcome),
                "execution_name": execution,
                "outcome": outcome,
                "message_id": message_id,
                "expires_at": int(datetime.now(UTC).timestamp()) + settings.idempotency_ttl_seconds,
            },
            "attribute_not_exists(pk) OR execution_name = :owner",  # DynamoDB refuses empty value maps
            {":owner": execution},
        )
