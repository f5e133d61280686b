"""EventBridge -> Step Functions delivery, which moto's EventBridge lacks.

moto matches an event against every rule's pattern in `Rule.send_to_targets`, then delivers to logs,
SQS, archives and buses only (a `states` target raises NotImplementedError, which S3's notifier
swallows). The bridge wraps that method: after moto's own pattern matcher accepts the event, targets
whose ARN is a state machine get a StartExecution with the event as input (or the target's Input,
InputPath or InputTransformer), as EventBridge does; all other targets go to moto unchanged.
Also: moto's GetBucketNotificationConfiguration omits EventBridgeConfiguration; the bridge adds it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
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


class EventBridgeToStepFunctions:
    """Installs the delivery in this process (the one running moto's backends)."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._sfn: Any = None
        self._lock = threading.Lock()
        self._original: Callable[..., None] | None = None
        self._undo_s3: Callable[[], None] = lambda: None

    def start_execution(self, rule_name: str, target: dict[str, Any], event: dict[str, Any]) -> str:
        with self._lock:
            if self._sfn is None:
                self._sfn = client("stepfunctions", self._env)
        # EventBridge names executions with a UUID; the rule's RoleArn is what it would assume.
        response = self._sfn.start_execution(
            stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=target_input(target, event)
        )
        log.info("event %s matched rule %s: started %s", event["id"], rule_name, response["executionArn"])
        return response["executionArn"]

    def install(self) -> None:
        from moto.events.models import Rule

        if self._original is not None:
            return
        original = Rule.send_to_targets
        bridge = self

        def send_to_targets(rule: Rule, original_event: Any, transform_input: bool = True) -> None:
            if not rule.event_pattern.matches_event(original_event):
                return
            event = normalize_event(original_event)
            others = []
            for target in rule.targets:
                if target.get("Arn", "").split(":")[2:3] == ["states"]:
                    try:
                        bridge.start_execution(rule.name, target, event)
                    except Exception:  # delivery is asynchronous on AWS: never fail the producer's call
                        log.exception("rule %s: could not start %s", rule.name, target.get("Arn"))
                else:
                    others.append(target)
            if others:
                rest = copy.copy(rule)
                rest.targets = others
                original(rest, original_event, transform_input)

        Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
        self._original = original
        self._undo_s3 = _report_eventbridge_configuration()

    def uninstall(self) -> None:
        from moto.events.models import Rule

        if self._original is not None:
            Rule.send_to_targets = self._original  # type: ignore[method-assign,assignment]
            self._original = None
            self._undo_s3()
