"""CloudWatch: rollback alarms and metric read-back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from functions.adapters._client import client as _client
from functions.errors import aws_errors


def client() -> Any:
    return _client("cloudwatch")


def put_metric_alarm(spec: dict[str, Any]) -> None:
    """Create or overwrite an alarm (PutMetricAlarm is an upsert)."""
    with aws_errors("put_metric_alarm"):
        client().put_metric_alarm(**spec)


def describe_alarms(names: list[str]) -> dict[str, dict[str, Any]]:
    """The metric alarms among `names` that exist, by name (DescribeAlarms silently skips unknown names)."""
    if not names:
        return {}
    found: dict[str, dict[str, Any]] = {}
    with aws_errors("describe_alarms"):
        for page in client().get_paginator("describe_alarms").paginate(AlarmNames=names):
            for alarm in page.get("MetricAlarms", []):
                found[alarm["AlarmName"]] = alarm
    return found


def alarm_states(names: list[str]) -> dict[str, str]:
    """State of each named alarm; a missing alarm reports "MISSING"."""
    found = describe_alarms(names)
    return {name: found[name]["StateValue"] if name in found else "MISSING" for name in names}


def alarms_fired(names: list[str], start: datetime, end: datetime) -> list[str]:
    """The named alarms that went to ALARM within [start, end] (DescribeAlarmHistory StateUpdate items), so an
    alarm that fired and cleared between two looks is not missed."""
    fired = []
    with aws_errors("describe_alarm_history"):
        for name in names:
            pages = client().get_paginator("describe_alarm_history").paginate(
                AlarmName=name, HistoryItemType="StateUpdate", StartDate=start, EndDate=end
            )
            for page in pages:
                if any(_new_state(item) == "ALARM" for item in page.get("AlarmHistoryItems", [])):
                    fired.append(name)
                    break
    return fired


def _new_state(item: dict[str, Any]) -> str | None:
    try:
        data = json.loads(item.get("HistoryData") or "{}")
    except ValueError:
        return "ALARM" if "to ALARM" in str(item.get("HistorySummary", "")) else None
    return (data.get("newState") or {}).get("stateValue")


def metric_stats(
    *,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    stats: list[str],
    start: datetime,
    end: datetime,
    period: int,
    optional: bool = False,
) -> dict[str, list[float]]:
    """Values of each statistic over [start, end) in `period`-second buckets (GetMetricData).

    GetMetricData matches the dimension set exactly, so the {EndpointName, VariantName} series is never mixed
    with the {.., EndpointConfigName} one. `optional=True` makes a single attempt, for statistics (percentiles)
    that not every CloudWatch implementation computes; the caller treats a failure as "not available".
    """
    out: dict[str, list[float]] = {stat: [] for stat in stats}
    for stat, _, value in _metric_data(namespace, metric, dimensions, stats, start, end, period, optional):
        out[stat].append(value)
    return out


def metric_periods(
    *,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    stats: list[str],
    start: datetime,
    end: datetime,
    period: int,
    optional: bool = False,
) -> dict[str, dict[float, float]]:
    """Like `metric_stats`, keyed by each period's start (epoch seconds), so two series can be aligned period
    by period (GetMetricData omits periods without data and orders them newest first)."""
    out: dict[str, dict[float, float]] = {stat: {} for stat in stats}
    for stat, ts, value in _metric_data(namespace, metric, dimensions, stats, start, end, period, optional):
        out[stat][ts] = value
    return out


def _metric_data(
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    stats: list[str],
    start: datetime,
    end: datetime,
    period: int,
    optional: bool,
) -> Iterator[tuple[str, float, float]]:
    """(statistic, period start in epoch seconds, value) for every datapoint GetMetricData returns."""
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for i, stat in enumerate(stats)
    ]
    cw = _client("cloudwatch", max_attempts=1) if optional else client()
    with aws_errors("get_metric_data"):
        pages = cw.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                stat = stats[int(result["Id"][1:])]
                values = result.get("Values", [])
                stamps = result.get("Timestamps") or range(len(values))  # always sent by CloudWatch
                for ts, v in zip(stamps, values, strict=False):
                    if v is not None:
                        yield stat, ts.timestamp() if hasattr(ts, "timestamp") else float(ts), float(v)


def alarms_with_prefix(prefix: str) -> list[dict[str, Any]]:
    """The metric alarms (single-metric and metric math) whose name starts with `prefix`."""
    found: list[dict[str, Any]] = []
    with aws_errors("describe_alarms"):
        for page in client().get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix):
            found.extend(page.get("MetricAlarms", []))
    return found


def delete_alarms(names: list[str]) -> None:
    """DeleteAlarms, 100 names per call (its limit); unknown names are ignored by CloudWatch."""
    with aws_errors("delete_alarms"):
        for i in range(0, len(names), 100):
            client().delete_alarms(AlarmNames=names[i : i + 100])
