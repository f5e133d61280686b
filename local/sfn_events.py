"""Step Functions "Execution Status Change" events, which moto never emits (a moto gap, docs/local-cloud.md).

On AWS, Step Functions sends every Standard execution's status changes to the default event bus
(source `aws.states`, detail-type `Step Functions Execution Status Change`, detail = DescribeExecution's fields
with `startDate`/`stopDate` in epoch milliseconds). Guardrail's ExecutionEnded rule listens for ABORTED,
TIMED_OUT and FAILED. Here, `ExecutionStatusEvents.emit()` (called on the bridge's tick) finds executions that
ended since the last call in moto's Step Functions backends and hands one event per execution to the default
bus's rules, exactly as the bridge delivers S3 events and schedules. RUNNING/SUCCEEDED changes are emitted too
(AWS does), so a rule's pattern decides what it gets. Executions already over when the emitter starts are
skipped: it reports changes, not history.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from typing import Any

log = logging.getLogger(__name__)

DETAIL_TYPE = "Step Functions Execution Status Change"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _millis(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, int | float):
        return int(value * 1000) if value < 1e11 else int(value)
    try:
        return int(dt.datetime.fromisoformat(str(value)).timestamp() * 1000)
    except ValueError:
        return None


def _describe(execution: Any) -> dict[str, Any]:
    """DescribeExecution's fields for one execution of either moto backend (the interpreter's or the plain one)."""
    if hasattr(execution, "to_describe_output"):
        out = dict(execution.to_describe_output())
        status = out.get("status")
        out["status"] = getattr(status, "value", status)
        return out
    return {
        "executionArn": execution.execution_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.status,
        "startDate": execution.start_date,
        "stopDate": getattr(execution, "stop_date", None),
        "input": getattr(execution, "execution_input", None),
        "output": getattr(execution, "output", None),
        "error": getattr(execution, "error", None),
        "cause": getattr(execution, "cause", None),
    }


def status_change_event(described: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    """The event AWS puts on the default bus (documented shape; `input`/`output` as JSON strings)."""
    output = described.get("output")
    detail = {
        "executionArn": described["executionArn"],
        "stateMachineArn": described["stateMachineArn"],
        "name": described["name"],
        "status": described["status"],
        "startDate": _millis(described.get("startDate")),
        "stopDate": _millis(described.get("stopDate")),
        "input": described.get("input"),
        "output": output if output is None or isinstance(output, str) else json.dumps(output),
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if output is not None else None,
        "error": described.get("error"),
        "cause": described.get("cause"),
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.states",
        "account": account,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [described["executionArn"]],
        "detail": detail,
    }


def _backends() -> list[tuple[str, str, Any]]:
    from moto.stepfunctions.models import stepfunctions_backends

    found = []
    dicts = [stepfunctions_backends]
    try:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        dicts.append(stepfunctions_parser_backends)
    except ImportError:  # an older moto without the interpreter
        pass
    for backend_dict in dicts:
        for account, regions in list(backend_dict.items()):
            for region, backend in list(regions.items()):
                found.append((account, region, backend))
    return found


def _send(event: dict[str, Any], account: str, region: str) -> int:
    """Offer the event to every rule of the default bus (the bridge's patched send_to_targets matches it)."""
    from moto.events.models import events_backends

    try:
        bus = events_backends[account][region].event_buses.get("default")
    except KeyError:
        return 0
    now = dt.datetime.now(dt.UTC).timestamp()
    internal = {**event, "time": now, "ingestion-time": now}  # moto's own form; targets get the AWS shape
    offered = 0
    for rule in list(bus.rules.values()) if bus else []:
        try:
            rule.send_to_targets(internal)
            offered += 1
        except Exception:
            log.exception("rule %s: could not deliver %s", rule.name, event["detail"]["executionArn"])
    return offered


class ExecutionStatusEvents:
    """Emits a status-change event the first time an execution is seen in a terminal status."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()
        self._primed = False

    def emit(self) -> list[dict[str, Any]]:
        """One pass: the events sent for executions that ended (or started) since the previous pass."""
        sent = []
        with self._lock:
            for account, region, backend in _backends():
                for machine in list(getattr(backend, "state_machines", [])):
                    for execution in list(getattr(machine, "executions", [])):
                        try:
                            described = _describe(execution)
                        except Exception:  # an execution still being set up
                            continue
                        arn, status = described.get("executionArn"), described.get("status")
                        if not arn or not status or self._seen.get(arn) == status:
                            continue
                        self._seen[arn] = status
                        if not self._primed and status in TERMINAL:
                            continue  # over before the emitter started: history, not a change
                        event = status_change_event(described, account, region)
                        _send(event, account, region)
                        sent.append(event)
                        if status in TERMINAL:
                            log.info("execution %s %s: status-change event sent", described["name"], status)
            self._primed = True
        return sent
