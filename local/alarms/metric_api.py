"""CloudWatch's metric read APIs as AWS computes them, patched into in-process moto (5.2.5).

moto gaps (checked in `moto/cloudwatch/models.py`) and what AWS documents instead:
- GetMetricStatistics keeps every datum whose dimensions *contain* the query's (`MetricDatumBase.filter`);
  GetMetricData compares `sorted()` dimension lists with a broken `Dimension.__lt__` (order-sensitive) and
  ignores the namespace when dimensions are given. AWS (GetMetricStatistics API reference, Dimensions):
  "CloudWatch treats each unique combination of dimensions as a separate metric. If a specific
  combination of dimensions was not published, you can't retrieve statistics for it." Here: the exact
  dimension *set* (order-insensitive) of the same namespace and metric name.
- GetMetricStatistics starts its periods at the first datum's timestamp. AWS (StartTime): rounded down to
  the whole minute, or for Period 5/10/20/30 (and 1) to that division of the minute; each datapoint's
  Timestamp is the start of its period. (The coarser 5-min / 1-h rounding AWS applies to start times more
  than 15/63 days ago follows its data roll-up, which the local cloud does not do; not emulated.)
- ExtendedStatistics / Stat "p99" are not computed (an empty datapoint; GetMetricData fails with HTTP 500).
  Here: pNN, tmNN, wmNN, tcNN, tsNN, TM/WM/TC/TS/PR(lo:hi) and IQM from the raw values, with the same
  code the alarm evaluator uses (`local.alarms.semantics`). Not available (no value) for a period with a
  statistic set whose SampleCount is not 1 and Min != Max, or with a negative value, as documented.
- ListMetrics returns one entry per datum; AWS lists each metric (namespace, name, dimension set) once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from local.alarms.semantics import (
    ExtendedStatistic,
    PeriodSamples,
    basic_value,
    extended_value,
    parse_extended_statistic,
)

BASIC = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
SeriesKey = tuple[str, str, frozenset[tuple[str, str]]]


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


def series_key(namespace: str, name: str, dimensions: Iterable[Any]) -> SeriesKey:
    """A metric's identity: namespace, name and the set of (name, value) dimension pairs."""
    pairs = frozenset(
        (d["Name"], d["Value"]) if isinstance(d, dict) else (d.name, d.value) for d in dimensions
    )
    return namespace, name, pairs


def aligned_start(start: float, period: int) -> float:
    """StartTime as CloudWatch rounds it (data younger than 15 days): to the minute, or for a period that
    divides a minute (1, 5, 10, 20, 30 s) to that division."""
    step = period if period < 60 and 60 % period == 0 else 60
    return math.floor(start / step) * step


def _buckets(
    backend: Any, key: SeriesKey, unit: str | None, start: float, end: float, period: int
) -> tuple[float, dict[float, PeriodSamples], dict[float, str | None]]:
    """Samples of the exact metric `key` per period start over [aligned start, end)."""
    first = aligned_start(start, period)
    samples: dict[float, PeriodSamples] = {}
    units: dict[float, str | None] = {}
    namespace, name, dims = key
    for datum in backend.get_all_metrics():
        if datum.namespace != namespace or datum.name != name:
            continue
        if unit and datum.unit != unit:
            continue
        if frozenset((d.name, d.value) for d in datum.dimensions) != dims:
            continue
        t = _epoch(datum.timestamp)
        if not first <= t < end:
            continue
        bucket = first + math.floor((t - first) / period) * period
        into = samples.setdefault(bucket, PeriodSamples())
        units.setdefault(bucket, datum.unit)
        if hasattr(datum, "value"):
            into.values.append(float(datum.value))
        else:
            into.sets.append(
                (float(datum.sample_count), float(datum.sum), float(datum.min), float(datum.max))
            )
    return first, samples, units


def statistic_value(samples: PeriodSamples, stat: str, extended: ExtendedStatistic | None) -> float | None:
    return extended_value(samples, extended) if extended is not None else basic_value(samples, stat)


def get_metric_statistics(
    backend: Any,
    namespace: str,
    metric_name: str,
    dimensions: list[dict[str, str]],
    start: datetime,
    end: datetime,
    period: int,
    statistics: list[str],
    extended: list[str],
    unit: str | None,
) -> list[dict[str, Any]]:
    key = series_key(namespace, metric_name, dimensions)
    parsed = {name: parse_extended_statistic(name) for name in extended}
    _, buckets, units = _buckets(backend, key, unit, _epoch(start), _epoch(end), period)
    datapoints: list[dict[str, Any]] = []
    for bucket in sorted(buckets):
        samples = buckets[bucket]
        point: dict[str, Any] = {"Timestamp": datetime.fromtimestamp(bucket, UTC)}
        for stat in statistics:
            point[stat] = basic_value(samples, stat)
        values = {name: extended_value(samples, stat) for name, stat in parsed.items() if stat is not None}
        values = {name: v for name, v in values.items() if v is not None}
        if extended and not values and not statistics:
            continue  # percentiles not available for this period (statistic sets / negative values)
        if values:
            point["ExtendedStatistics"] = values
        point["Unit"] = unit or units.get(bucket) or "None"
        datapoints.append(point)
    return datapoints


def metric_stat_result(
    backend: Any, query: dict[str, Any], start: datetime, end: datetime, scan_by: str
) -> dict[str, Any]:
    stat_spec = query["MetricStat"]
    metric = stat_spec["Metric"]
    stat = stat_spec["Stat"]
    period = int(stat_spec["Period"])
    extended = None if stat in BASIC else parse_extended_statistic(stat)
    key = series_key(metric["Namespace"], metric["MetricName"], metric.get("Dimensions", []))
    _, buckets, _ = _buckets(backend, key, stat_spec.get("Unit"), _epoch(start), _epoch(end), period)
    timestamps: list[datetime] = []
    values: list[float] = []
    for bucket in sorted(buckets, reverse=scan_by == "TimestampDescending"):
        value = statistic_value(buckets[bucket], stat, extended)
        if value is not None:
            timestamps.append(datetime.fromtimestamp(bucket, UTC))
            values.append(value)
    return {
        "id": query["Id"],
        "label": query.get("Label") or f"{metric['MetricName']} {stat}",
        "values": values,
        "timestamps": timestamps,
        "status_code": "Complete",
    }


def valid_stat(stat: str) -> bool:
    return stat in BASIC or parse_extended_statistic(stat) is not None
