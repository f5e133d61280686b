"""Approval gates (issue 15 §1): ask a person before a shadow is promoted or a live endpoint is updated.

The state machine waits in a `lambda:invoke.waitForTaskToken` task whose Payload carries the task token
(`$$.Task.Token`) and the execution document. `request_approval`:
1. stores the token in the lock table as `approval#<execution>` (with what is asked and until when), so that
   `guardrail approve|reject <execution>` finds it with one GetItem. Not in the lock item (lock.py owns that
   one with conditional writes), not only in the execution history (GetExecutionHistory pages through every
   event, and an e-mail must not carry a credential that resumes the workflow);
2. publishes the request over SNS: what is asked, the evidence so far, the commands that answer, how long it
   waits and what happens then.
The task ends only on SendTaskSuccess (approve) / SendTaskFailure `ApprovalRejected` (reject) or its
TimeoutSeconds (`upload.approval.timeout_seconds`, States.Timeout -> `on_timeout`)
(https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token).
SageMaker cannot pause a blue/green update between its traffic-shifting steps: once a baking period ends with no
alarm, it shifts the rest of the traffic by itself
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html), and
TrafficRoutingConfig has no manual step (Type, WaitIntervalInSeconds, CanarySize, LinearStepSize only). So the
update gate asks before UpdateEndpoint, with the quality gate's and pre-flight's evidence.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters import dynamodb, sns
from functions.config import Settings
from functions.models import ApprovalInput, ApprovalRequested
from functions.steps.shadow_test import schedule_end

# The item outlives the wait a little, so that a late `guardrail approve` says "too late", not "unknown".
KEEP_AFTER_TIMEOUT = timedelta(days=1)
QUESTIONS = {
    "promote": "promote the shadow model to production",
    "update": "update the live endpoint",
}


def approval_key(execution: str) -> str:
    return f"approval#{execution}"


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def evidence(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The evidence so far, per gate: the shadow test's verdict and numbers, or the gate/pre-flight results."""
    upload = doc.get("upload") or {}
    if kind == "promote":
        analysis = _get(doc, "shadow", "analysis") or {}
        found = {
            "verdict": _get(doc, "shadow", "verdict"),
            "reasons": analysis.get("reasons"),
            "production": analysis.get("production"),
            "shadow": analysis.get("shadow"),
            "statistics": analysis.get("details"),
            "experiment": _get(doc, "shadow", "experiment_name"),
            "sampling_percent": _get(doc, "shadow", "sampling_percent"),
        }
    else:
        found = {
            "strategy": upload.get("strategy"),
            "canary_percent": upload.get("canary_percent") if upload.get("strategy") == "CANARY" else None,
            "linear_step_percent": upload.get("linear_step_percent") if upload.get("strategy") == "LINEAR" else None,
            "serving_config": _get(doc, "endpoint_config", "live_config"),
            "new_config": _get(doc, "endpoint_config", "name"),
            "quality_gate": {k: v for k, v in (doc.get("gate") or {}).items() if k in ("passed", "metrics", "reasons", "baseline")}
            or None,
            "preflight": {k: v for k, v in (doc.get("preflight") or {}).items() if k in ("passed", "skipped", "checks", "reasons", "golden")}
            or None,
        }  # fmt: skip
    return {k: v for k, v in found.items() if v not in (None, [], {})}


def experiment_end(shadow: dict[str, Any]) -> datetime | None:
    """When SageMaker ends the experiment by itself (shadow_test.schedule_end of its start and window)."""
    try:
        start, end = datetime.fromisoformat(shadow["starts_at"]), datetime.fromisoformat(shadow["ends_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return schedule_end(start, int((end - start).total_seconds()))


def _message(kind: str, execution: str, doc: dict[str, Any], found: dict[str, Any], expires: datetime) -> str:
    upload = doc.get("upload") or {}
    approval = upload.get("approval") or {}
    model = f"{upload.get('model_name', '?')}/{upload.get('model_version', '?')}"
    endpoint = upload.get("endpoint_name", "?")
    default = approval.get("on_timeout", "reject")
    lines = [
        f"Guardrail asks: {QUESTIONS[kind]} {endpoint} with {model}?",
        "",
    ]
    if kind == "promote":
        lines.append(
            f"The shadow test's verdict is {found.get('verdict', '?')}. Approving promotes the shadow variant "
            "(StopInferenceExperiment Promote); rejecting removes it and production keeps serving."
        )
        ends = experiment_end(doc.get("shadow") or {})
        if ends:
            lines.append(
                f"The experiment's own schedule ends at {ends.isoformat(timespec='seconds')}: SageMaker then removes "
                "the shadow by itself, and an approval after that cannot promote it."
            )
    else:
        lines.append(
            f"Approving starts the guarded {upload.get('strategy', '')} update (UpdateEndpoint with the rollback "
            f"alarms) from {found.get('serving_config', '?')} to {found.get('new_config', '?')}; rejecting leaves "
            "the endpoint as it is. SageMaker cannot pause a blue/green update between steps, so this is asked "
            "before it starts."
        )
    lines += [
        "",
        "Answer with one of:",
        f"  guardrail approve {execution} --reason '...'",
        f"  guardrail reject {execution} --reason '...'",
        f"  guardrail abort {execution} --reason '...'   (stop the whole deployment)",
        "(add --aws --stack-name <stack> for a stack on AWS)",
        "",
        f"It waits until {expires.isoformat(timespec='seconds')} ({approval.get('timeout_seconds', '?')} s); "
        f"then it will {default} by default.",
        "",
        f"Endpoint:  {endpoint}",
        f"Model:     {model}",
        f"Artifact:  {upload.get('artifact_uri', '-')}",
        f"Execution: {execution}",
        "",
        "Evidence so far:",
        json.dumps(found, indent=2, sort_keys=True, default=str),
    ]
    return "\n".join(lines)


def request_approval(request: ApprovalInput, settings: Settings, now: datetime | None = None) -> ApprovalRequested:
    settings.require("table_name", "topic_arn")
    now = now or datetime.now(UTC)
    doc = request.snapshot
    execution = request.execution or str(_get(doc, "execution", "Name") or "")
    upload = doc.get("upload") or {}
    timeout = int(_get(upload, "approval", "timeout_seconds") or settings.approval_timeout_seconds)
    expires = now + timedelta(seconds=timeout)
    found = evidence(request.kind, doc)
    key = approval_key(execution)
    # Overwritten on purpose: a Lambda retry or a second gate of the same execution gets a fresh token.
    dynamodb.put_if(
        settings.table_name or "",
        {
            "pk": key,
            "execution_name": execution,
            "execution_arn": str(_get(doc, "execution", "Id") or ""),
            "kind": request.kind,
            "task_token": request.token,
            "endpoint": str(upload.get("endpoint_name") or settings.endpoint_name),
            "model": f"{upload.get('model_name', '?')}/{upload.get('model_version', '?')}",
            "asked_at": now.isoformat(),
            "waits_until": expires.isoformat(),
            "on_timeout": str(_get(upload, "approval", "on_timeout") or settings.approval_on_timeout),
            "expires_at": int((expires + KEEP_AFTER_TIMEOUT).timestamp()),
        },
        "attribute_not_exists(pk) OR execution_name = :owner",
        {":owner": execution},
    )
    endpoint = str(upload.get("endpoint_name") or settings.endpoint_name)
    model = f"{upload.get('model_name', '?')}/{upload.get('model_version', '?')}"
    subject = f"Guardrail APPROVAL NEEDED: {request.kind} {model} on {endpoint}"[:100]
    message_id = sns.publish(
        settings.topic_arn or "",
        subject,
        _message(request.kind, execution, doc, found, expires),
        {"outcome": "APPROVAL_REQUESTED", "endpoint": endpoint, "model": model, "approval": request.kind},
    )
    return ApprovalRequested(
        execution=execution, kind=request.kind, key=key, message_id=message_id, expires_at=int(expires.timestamp())
    )
