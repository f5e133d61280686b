"""Helpers for the alarm tests: a fixed clock origin, metric publishing, alarm creation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

REGION = "us-east-1"
T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)  # a minute boundary
T0_EPOCH = T0.timestamp()
_ids = itertools.count()


def new_id() -> str:
    return f"t{next(_ids)}"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def dims(endpoint: str, config: str | None = None) -> list[dict[str, str]]:
    out = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    if config:
        out.append({"Name": "EndpointConfigName", "Value": config})
    return out


def put(cw, metric: str, dimensions: list[dict[str, str]], points: list[tuple[float, float]]) -> None:
    """Publish (seconds after T0, value) datapoints, high resolution, as the emulator does."""
    data = [
        {
            "MetricName": metric,
            "Dimensions": dimensions,
            "Timestamp": at(s),
            "Value": v,
            "StorageResolution": 1,
        }
        for s, v in points
    ]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[i : i + 500])


def alarm(cw, name: str, metric: str, dimensions: list[dict[str, str]], **overrides) -> None:
    params = {
        "AlarmName": name,
        "Namespace": "AWS/SageMaker",
        "MetricName": metric,
        "Dimensions": dimensions,
        "Statistic": "Average",
        "Period": 10,
        "EvaluationPeriods": 1,
        "Threshold": 0.05,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "missing",
    } | overrides
    if "ExtendedStatistic" in overrides:
        params.pop("Statistic")
    cw.put_metric_alarm(**params)


def state(cw, name: str) -> str:
    return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]
