"""EventBridge delivery that moto's EventBridge lacks: Step Functions and Lambda targets, schedules.

moto matches an event against every rule's pattern in `Rule.send_to_targets`, then delivers to logs,
SQS, archives and buses only (a `states` or `lambda` target raises NotImplementedError, which S3's
notifier swallows, together with the delivery to every rule after it). The bridge wraps that method:
- a rule with only a ScheduleExpression receives no events (moto's empty pattern matches all);
- after moto's own pattern matcher accepts the event, a state machine target gets StartExecution, a
  function target an asynchronous Invoke, with the event as input (or the target's Input, InputPath
  or InputTransformer), as EventBridge does; other targets go to moto; one target's failure never
  stops the others (delivery is asynchronous on AWS).
- `rate(...)` schedules fire: a "Scheduled Event" to the rule's targets every period (moto never
  fires them); `cron(...)` is not supported and is logged once.
- Step Functions "Execution Status Change" events (moto never emits them) go to the default bus's rules on
  each tick (local/sfn_events.py), so a rule on ABORTED / TIMED_OUT / FAILED executions runs locally.
Also: moto's GetBucketNotificationConfiguration omits EventBridgeConfiguration; the bridge adds it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from local.env import client

log = logging.getLogger(__name__)

# The id moto gives every S3 event (its template's); a real event id is unique.
_MOTO_FIXED_EVENT_ID = "17793124-05d4-b198-2fde-7ededc63b103"


def normalize_event(event: dict[str, Any]) -> dict[str, Any]:
    """Give a moto-built event the shape EventBridge delivers: unique id, ISO time, no internal keys."""
    event = copy.deepcopy(event)
    if not event.get("id") or event["id"] == _MOTO_FIXED_EVENT_ID:
        event["id"] = str(uuid.uuid4())
    when = event.get("time")
    if isinstance(when, (int, float)) or when in (None, ""):
        when = dt.datetime.fromtimestamp(float(when or dt.datetime.now(dt.UTC).timestamp()), dt.UTC)
    if isinstance(when, dt.datetime):
        event["time"] = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event.pop("ingestion-time", None)
    return event


def _input_path(event: dict[str, Any], path: str) -> Any:
    """EventBridge InputPath: a simple JSONPath ($, $.a.b)."""
    if path in ("", "$"):
        return event
    if not path.startswith("$."):
        raise ValueError(f"unsupported InputPath {path!r}")
    value: Any = event
    for part in path[2:].split("."):
        value = value[part]
    return value


def target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    """The execution input EventBridge would send to this target."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return json.dumps(_input_path(event, target["InputPath"]))
    if "InputTransformer" in target:
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        rendered = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={"ingestion-time": time.time(), **event},  # type: ignore[typeddict-item]  # moto's parser wants it
        )
        return rendered if isinstance(rendered, str) else json.dumps(rendered)
    return json.dumps(event)


def _report_eventbridge_configuration() -> Callable[[], None]:
    """moto applies a bucket's EventBridgeConfiguration but GetBucketNotificationConfiguration leaves it
    out; add it, so what a client reads matches what S3 does. Returns the undo."""
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_notification

    def get_bucket_notification(response: S3Response) -> Any:
        result = original(response)
        config = response.backend.get_bucket_notification_configuration(response.bucket_name)
        if config is None or config.event_bridge is None:
            return result
        status, headers, body = result
        root = ElementTree.fromstring(body)
        namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
        ElementTree.register_namespace("", namespace)
        ElementTree.SubElement(root, f"{{{namespace}}}EventBridgeConfiguration" if namespace else "EventBridgeConfiguration")
        headers.pop("Content-Length", None)
        return status, headers, ElementTree.tostring(root, encoding="unicode", xml_declaration=True)

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign,assignment]

    def undo() -> None:
        S3Response.get_bucket_notification = original  # type: ignore[method-assign,assignment]

    return undo


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    """Seconds between firings of an EventBridge `rate(...)` expression; None for anything else."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    value, unit = int(match.group(1)), match.group(2).rstrip("s")
    if value < 1 or (value == 1) != (match.group(2) == unit):
        raise ValueError(f"invalid schedule expression {expression!r}")  # rate(1 minutes), rate(2 hour)
    return value * _UNIT_SECONDS[unit]


def scheduled_event(rule_arn: str, account: str, region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class EventBridgeDelivery:
    """Installs the delivery in this process (the one running moto's backends)."""

    def __init__(self, env: dict[str, str], tick: float = 1.0) -> None:
        self._env = env
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._original: Callable[..., None] | None = None
        self._undo_s3: Callable[[], None] = lambda: None
        self._tick = tick
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._next_fire: dict[str, float] = {}  # rule ARN -> monotonic time
        self._unsupported: set[str] = set()
        from local.sfn_events import ExecutionStatusEvents

        self.status_events = ExecutionStatusEvents()

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = client(service, self._env)
            return self._clients[service]

    def deliver(self, rule_name: str, target: dict[str, Any], event: dict[str, Any]) -> str | None:
        """Deliver to a state machine or function target; None for a target moto delivers itself."""
        service = target.get("Arn", "").split(":")[2:3]
        if service == ["states"]:
            # EventBridge names executions with a UUID; the rule's RoleArn is what it would assume.
            response = self._client("stepfunctions").start_execution(
                stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=target_input(target, event)
            )
            log.info("event %s matched rule %s: started %s", event["id"], rule_name, response["executionArn"])
            return str(response["executionArn"])
        if service == ["lambda"]:
            self._client("lambda").invoke(
                FunctionName=target["Arn"], InvocationType="Event", Payload=target_input(target, event).encode()
            )
            log.info("event %s matched rule %s: invoked %s", event["id"], rule_name, target["Arn"])
            return str(target["Arn"])
        return None

    def _deliver_all(self, rule: Any, event: dict[str, Any], moto_send: Callable[[Any], None]) -> None:
        others = []
        for target in rule.targets:
            try:
                if self.deliver(rule.name, target, event) is None:
                    others.append(target)
            except Exception:  # delivery is asynchronous on AWS: never fail the producer, nor other targets
                log.exception("rule %s: could not deliver to %s", rule.name, target.get("Arn"))
        if others:
            rest = copy.copy(rule)
            rest.targets = others
            try:
                moto_send(rest)
            except Exception:
                log.exception("rule %s: moto could not deliver to %s", rule.name, [t.get("Arn") for t in others])

    def install(self) -> None:
        from moto.events.models import Rule

        if self._original is not None:
            return
        original = Rule.send_to_targets
        delivery = self

        def send_to_targets(rule: Rule, original_event: Any, transform_input: bool = True) -> None:
            if rule.scheduled_expression and not rule.event_pattern.get_pattern():
                return  # a schedule-only rule receives no events
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(original_event):
                return
            event = normalize_event(original_event)
            delivery._deliver_all(rule, event, lambda rest: original(rest, original_event, transform_input))

        Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
        self._original = original
        self._undo_s3 = _report_eventbridge_configuration()
        self._stop.clear()
        self._scheduler = threading.Thread(target=self._run_schedules, name="eventbridge-schedules", daemon=True)
        self._scheduler.start()

    def _run_schedules(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.fire_due_schedules(time.monotonic())
            except Exception:
                log.exception("schedules: tick failed")
            try:
                self.status_events.emit()
            except Exception:
                log.exception("execution status events: tick failed")

    def fire_due_schedules(self, now: float) -> list[str]:
        """Fire every enabled `rate(...)` rule whose period has passed; returns the rules fired."""
        from moto.events.models import events_backends

        fired = []
        for account, regions in list(events_backends.items()):
            for region, backend in list(regions.items()):
                for bus in list(backend.event_buses.values()):
                    for rule in list(bus.rules.values()):
                        if not rule.scheduled_expression or rule.state != "ENABLED":
                            self._next_fire.pop(rule.arn, None)
                            continue
                        period = self._period(rule)
                        if period is None:
                            continue
                        due = self._next_fire.setdefault(rule.arn, now + period)  # first: one period after creation
                        if now < due:
                            continue
                        self._next_fire[rule.arn] = now + period
                        event = scheduled_event(rule.arn, account, region)
                        self._deliver_all(rule, event, lambda rest, e=event: self._original(rest, e, False))  # type: ignore[misc]
                        fired.append(rule.name)
        return fired

    def _period(self, rule: Any) -> int | None:
        try:
            period = rate_seconds(rule.scheduled_expression)
        except ValueError:
            period = None
        if period is None and rule.arn not in self._unsupported:
            self._unsupported.add(rule.arn)
            log.warning("rule %s: schedule %r is not run locally (only rate(...) is)", rule.name, rule.scheduled_expression)
        return period

    def uninstall(self) -> None:
        from moto.events.models import Rule

        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
            self._scheduler = None
        if self._original is not None:
            Rule.send_to_targets = self._original  # type: ignore[method-assign,assignment]
            self._original = None
            self._undo_s3()
