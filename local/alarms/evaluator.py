"""AlarmEvaluator: evaluates moto's metric alarms with CloudWatch semantics and sets their states.

Timing choice: every `interval` seconds (1 s by default) each alarm is evaluated over the last
N + 2 *complete* periods, aligned to multiples of Period since the epoch as CloudWatch aligns them.
For high-resolution alarms (Period 10/20/30 s) the current, still-open period is also evaluated as
the newest datapoint when it already holds data (`evaluate_partial_period`, on by default), so a
burst of errors trips a 10-s alarm within about a second instead of after the period closes; an
open period with no data yet is never counted as missing. Standard alarms (60 s and up) use
complete periods only.
States are written with SetAlarmState only on a transition; alarm actions (SNS topics) are
published by this evaluator, since moto's SetAlarmState publishes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from local.alarms.definition import AlarmDefinition
from local.alarms.math import MathError, parse_queries, returned_series
from local.alarms.metrics import ApiMetricReader, BackendMetricIndex
from local.alarms.moto_patches import patch_moto, record
from local.alarms.notify import actions_for, alarm_message, publish
from local.alarms.semantics import EXTRA_RANGE_PERIODS, Datapoint, decide, period_starts

log = logging.getLogger(__name__)

UNCHECKED = "Unchecked: Initial alarm creation"


class Transition(BaseModel):
    alarm_name: str
    old_state: str
    new_state: str
    reason: str
    at: datetime
    notified: list[str] = []


class AlarmEvaluator:
    """`AlarmEvaluator(aws_endpoint_url=..., region=..., interval=1.0).start()` / `.stop()` /
    `.evaluate_once(now)`; `now` is epoch seconds or a datetime (tests pass it for determinism)."""

    def __init__(
        self,
        aws_endpoint_url: str | None = None,
        region: str = "us-east-1",
        interval: float = 1.0,
        evaluate_partial_period: bool = True,
        session: boto3.session.Session | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        patch_moto()
        session = session or boto3.session.Session()
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        self.cloudwatch = session.client(
            "cloudwatch", endpoint_url=aws_endpoint_url, region_name=region, config=config
        )
        self.sns = session.client("sns", endpoint_url=aws_endpoint_url, region_name=region, config=config)
        self.interval = interval
        self.evaluate_partial_period = evaluate_partial_period
        self._index = BackendMetricIndex()
        self._api = ApiMetricReader(self.cloudwatch)
        self._told: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.transitions: list[Transition] = []  # what this evaluator changed, oldest first (last 1000)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> AlarmEvaluator:
        if self._thread and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alarm-evaluator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> AlarmEvaluator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.evaluate_once()
            except Exception:  # keep evaluating: one bad tick must not end the guardrails
                log.exception("alarm evaluation failed")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    # ---- evaluation ------------------------------------------------------------------------
    def _alarms(self) -> list[dict[str, Any]]:
        alarms: list[dict[str, Any]] = []
        for page in self.cloudwatch.get_paginator("describe_alarms").paginate():
            alarms.extend(page.get("MetricAlarms", []))
        return alarms

    def _tell_once(self, name: str, message: str) -> None:
        if (name, message) not in self._told:
            self._told.add((name, message))
            log.warning("alarm %s not evaluated: %s", name, message)

    def evaluate_once(self, now: float | datetime | None = None) -> list[Transition]:
        """Evaluate every metric alarm once; returns the transitions made."""
        if isinstance(now, datetime) and now.tzinfo is None:
            now = now.replace(tzinfo=UTC)  # CloudWatch time is UTC
        t = time.time() if now is None else (now.timestamp() if isinstance(now, datetime) else float(now))
        refreshed: set[int] = set()
        made: list[Transition] = []
        raws = self._alarms()
        # keep indexed datapoints as long as the longest evaluation range needs them (at least 10 min)
        self._index.retention = max(
            [600.0]
            + [
                float(a.get("Period") or 60) * (a.get("EvaluationPeriods", 1) + EXTRA_RANGE_PERIODS + 1)
                for a in raws
            ]
        )
        for raw in raws:
            try:
                alarm = AlarmDefinition.model_validate(raw)
            except ValidationError as exc:
                self._tell_once(str(raw.get("AlarmName")), f"unreadable definition: {exc}")
                continue
            if problem := alarm.unsupported_reason():
                self._tell_once(alarm.name, problem)
                continue
            backend = BackendMetricIndex.backend_for(alarm)
            if backend is not None and id(backend) not in refreshed:
                self._index.refresh(backend, t)
                refreshed.add(id(backend))
            try:
                transition = self._evaluate(alarm, t, backend)
            except (NotImplementedError, MathError) as exc:
                self._tell_once(alarm.name, str(exc))
                continue
            except ClientError as exc:  # e.g. deleted between DescribeAlarms and SetAlarmState
                log.warning("alarm %s: %s", alarm.name, exc)
                continue
            if transition:
                made.append(transition)
        self.transitions = (self.transitions + made)[-1000:]
        return made

    def _range(self, alarm: AlarmDefinition, t: float, backend: Any) -> list[tuple[float, Datapoint | None]]:
        if alarm.metrics:
            return self._math_range(alarm, t, backend)
        period = int(alarm.period or 60)
        starts = period_starts(t, period, alarm.evaluation_periods + EXTRA_RANGE_PERIODS)
        reader = self._index if backend is not None else self._api
        points = reader.datapoints(alarm, starts)
        if self.evaluate_partial_period and period < 60:
            open_start = math.floor(t / period) * period
            open_point = reader.datapoints(alarm, [open_start])[0]
            if open_point[1] is not None:
                points.append(open_point)
        return points

    def _math_range(
        self, alarm: AlarmDefinition, t: float, backend: Any
    ) -> list[tuple[float, Datapoint | None]]:
        """A metric-math alarm's evaluation range: each MetricStat read per period like a single-metric alarm,
        then the ReturnData expression per period (local/alarms/math.py). The open high-resolution period is
        included when any of its metrics already has data there, as for single-metric alarms."""
        period = alarm.effective_period
        grid = period_starts(t, period, alarm.evaluation_periods + EXTRA_RANGE_PERIODS)
        open_start = math.floor(t / period) * period
        partial = self.evaluate_partial_period and period < 60
        reader = self._index if backend is not None else self._api
        series: dict[str, dict[float, float]] = {}
        counts: dict[float, float] = {}
        open_has_data = False
        for qid, single in alarm.metric_definitions().items():
            points = reader.datapoints(single, grid + ([open_start] if partial else []))
            series[qid] = {s: dp.value for s, dp in points if dp is not None}
            for s, dp in points:
                if dp is not None:
                    counts[s] = max(counts.get(s, 0.0), dp.sample_count)
                    open_has_data = open_has_data or (partial and s == open_start)
        full = grid + ([open_start] if open_has_data else [])
        values = returned_series(parse_queries(alarm.metrics), series, full)
        return [
            (s, Datapoint(s, values[s], counts.get(s, float("nan"))) if s in values else None) for s in full
        ]

    def _evaluate(self, alarm: AlarmDefinition, t: float, backend: Any) -> Transition | None:
        # moto without patch_moto() creates alarms in OK; on AWS they start INSUFFICIENT_DATA
        current = (
            "INSUFFICIENT_DATA" if alarm.state == "OK" and alarm.state_reason == UNCHECKED else alarm.state
        )
        outcome = decide(alarm, self._range(alarm, t, backend), current, t)
        if outcome.state is None or (outcome.state == alarm.state and current == alarm.state):
            return None
        reason = outcome.reason or f"Initial evaluation: {outcome.state}."
        self.cloudwatch.set_alarm_state(
            AlarmName=alarm.name,
            StateValue=outcome.state,
            StateReason=reason[:1023],
            StateReasonData=json.dumps(outcome.reason_data),
        )
        changed_at = datetime.now(UTC)
        transition = Transition(
            alarm_name=alarm.name, old_state=current, new_state=outcome.state, reason=reason, at=changed_at
        )
        log.info("alarm %s: %s -> %s: %s", alarm.name, current, outcome.state, reason)
        for arn in actions_for(alarm, outcome.state):
            self._act(alarm, arn, current, outcome.state, reason, changed_at, backend, transition)
        return transition

    def _act(
        self,
        alarm: AlarmDefinition,
        arn: str,
        old: str,
        new: str,
        reason: str,
        changed_at: datetime,
        backend: Any,
        transition: Transition,
    ) -> None:
        held = backend.alarms.get(alarm.name) if backend is not None else None
        if not arn.startswith("arn:aws:sns:"):
            self._tell_once(alarm.name, f"action {arn} is not an SNS topic; only SNS actions run locally")
            return
        subject, message = alarm_message(alarm, old, new, reason, changed_at)
        try:
            publish(self.sns, arn, subject, message)
        except Exception as exc:
            log.warning("alarm %s: action %s failed: %s", alarm.name, arn, exc)
            if held is not None:
                record(
                    held,
                    "Action",
                    f"Failed to execute action {arn}",
                    {"actionState": "Failed", "error": str(exc)},
                )
            return
        transition.notified.append(arn)
        if held is not None:
            record(
                held,
                "Action",
                f"Successfully executed action {arn}",
                {
                    "actionState": "Succeeded",
                    "notificationResource": arn,
                    "stateUpdateTimestamp": int(changed_at.timestamp() * 1000),
                },
            )
