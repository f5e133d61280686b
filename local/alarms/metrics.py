"""Where the evaluator reads datapoints from.

`BackendMetricIndex` reads moto's in-process CloudWatch backend (percentiles need raw values, and
moto's GetMetricData only does the five basic statistics). It indexes only what was appended since
the last call, per exact metric identity (namespace, name, full dimension set), so each evaluation
costs a binary search per alarm, not a scan of every datapoint ever published.
`ApiMetricReader` is the fallback for a moto in another process: GetMetricData per alarm (percentiles
too, once `patch_moto()` runs in that process).
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from local.alarms.definition import AlarmDefinition
from local.alarms.semantics import Datapoint, PeriodSamples, period_statistic

log = logging.getLogger(__name__)

MetricKey = tuple[str, str, frozenset[tuple[str, str]]]


def epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


class _Series:
    """Samples of one metric, ordered by timestamp (out-of-order arrivals are inserted in place)."""

    __slots__ = ("items", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.items: list[tuple[float | None, tuple[float, float, float, float] | None, str | None]] = []

    def add(
        self, t: float, item: tuple[float | None, tuple[float, float, float, float] | None, str | None]
    ) -> None:
        if not self.times or t >= self.times[-1]:
            self.times.append(t)
            self.items.append(item)
        else:
            i = bisect.bisect_right(self.times, t)
            self.times.insert(i, t)
            self.items.insert(i, item)

    def prune(self, before: float) -> None:
        i = bisect.bisect_left(self.times, before)
        if i:
            del self.times[:i]
            del self.items[:i]


class BackendMetricIndex:
    """Incremental index over `moto.cloudwatch.models.cloudwatch_backends[account][region].metric_data`."""

    def __init__(self, retention_seconds: float = 600.0) -> None:
        self.retention = retention_seconds
        self._lock = threading.Lock()
        self._backend: Any = None
        self._cursor = 0
        self._series: dict[MetricKey, _Series] = {}
        self._newest_now = 0.0

    @staticmethod
    def backend_for(alarm: AlarmDefinition) -> Any | None:
        """The in-process moto backend holding this alarm, or None when moto runs elsewhere."""
        from moto.cloudwatch.models import cloudwatch_backends

        accounts = cloudwatch_backends.get(alarm.account_id)  # plain dict get: never creates one
        backend = accounts.get(alarm.region) if accounts is not None and alarm.region in accounts else None
        held = getattr(backend, "alarms", {}).get(alarm.name) if backend is not None else None
        return backend if held is not None and held.alarm_arn == alarm.arn else None

    def _sync(self, backend: Any) -> None:
        data = backend.metric_data
        if backend is not self._backend or len(data) < self._cursor:  # new backend or moto was reset
            self._backend, self._cursor, self._series = backend, 0, {}
        end = len(data)
        for datum in data[self._cursor : end]:
            key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            if hasattr(datum, "value"):
                series.add(epoch(datum.timestamp), (float(datum.value), None, datum.unit))
            else:  # StatisticValues
                stats = (float(datum.sample_count), float(datum.sum), float(datum.min), float(datum.max))
                series.add(epoch(datum.timestamp), (None, stats, datum.unit))
        self._cursor = end

    def refresh(self, backend: Any, now: float) -> None:
        with self._lock:
            self._sync(backend)
            if now > self._newest_now:
                self._newest_now = now
                for series in self._series.values():
                    series.prune(now - self.retention)

    def samples(self, alarm: AlarmDefinition, starts: Iterable[float]) -> dict[float, PeriodSamples]:
        """Samples per period start for the alarm's exact metric (dimensions must match exactly)."""
        out: dict[float, PeriodSamples] = {}
        key = (alarm.namespace or "", alarm.metric_name or "", alarm.dimension_key)
        period = float(alarm.period or 60)
        with self._lock:
            series = self._series.get(key)
            for start in starts:
                bucket = out[start] = PeriodSamples()
                if series is None:
                    continue
                lo = bisect.bisect_left(series.times, start)
                hi = bisect.bisect_left(series.times, start + period)
                for value, stats, unit in series.items[lo:hi]:
                    if alarm.unit and unit != alarm.unit:
                        continue
                    if stats is None:
                        bucket.values.append(value)  # type: ignore[arg-type]
                    else:
                        bucket.sets.append(stats)
        return out

    def datapoints(self, alarm: AlarmDefinition, starts: list[float]) -> list[tuple[float, Datapoint | None]]:
        per_period = self.samples(alarm, starts)
        result: list[tuple[float, Datapoint | None]] = []
        for start in starts:
            stat = period_statistic(per_period[start], alarm)
            result.append((start, Datapoint(start, stat[0], stat[1]) if stat else None))
        return result


class ApiMetricReader:
    """GetMetricData per alarm (moto out of process); sample counts unknown (nan)."""

    def __init__(self, cloudwatch: Any) -> None:
        self.cloudwatch = cloudwatch

    def datapoints(self, alarm: AlarmDefinition, starts: list[float]) -> list[tuple[float, Datapoint | None]]:
        period = int(alarm.period or 60)
        query: dict[str, Any] = {
            "Id": "m",
            "MetricStat": {
                "Metric": {
                    "Namespace": alarm.namespace,
                    "MetricName": alarm.metric_name,
                    "Dimensions": [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
                },
                "Period": period,
                "Stat": alarm.stat_name,
            },
        }
        if alarm.unit:
            query["MetricStat"]["Unit"] = alarm.unit
        response = self.cloudwatch.get_metric_data(
            MetricDataQueries=[query],
            StartTime=datetime.fromtimestamp(starts[0], UTC),
            EndTime=datetime.fromtimestamp(starts[-1] + period, UTC),
            ScanBy="TimestampAscending",
        )
        found: dict[float, float] = {}
        for result in response["MetricDataResults"]:
            for ts, value in zip(result["Timestamps"], result["Values"], strict=False):
                found[epoch(ts)] = value
        return [(s, Datapoint(s, found[s], float("nan")) if s in found else None) for s in starts]
