"""Per-request invocation metrics, batched to CloudWatch (namespace AWS/SageMaker) off the serving path.

Each request is kept as a value (Values/Counts arrays of distinct values), so percentiles and 0/1 error rates
computed from CloudWatch are exact; one PutMetricData per flush keeps serving fast.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from local.sagemaker.flusher import PeriodicFlusher

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
MAX_VALUES_PER_DATUM = 150  # PutMetricData limit for Values/Counts
MAX_DATUMS_PER_CALL = 1000

# (endpoint, variant, endpoint config) → metric name → value → count
Key = tuple[str, str, str]


class MetricsPublisher(PeriodicFlusher):
    def __init__(self, cloudwatch: Any, interval: float = 1.0) -> None:
        super().__init__(interval, "sm-metrics")
        self._cw = cloudwatch
        self._buf: dict[tuple[int, Key], dict[str, Counter[float]]] = defaultdict(lambda: defaultdict(Counter))

    def record(
        self, endpoint: str, variant: str, config: str, status: int, model_us: float | None, overhead_us: float
    ) -> None:
        """One invocation; `status` is what the caller saw (the container's status for a ModelError)."""
        second = int(datetime.now(UTC).timestamp())
        with self._lock:
            m = self._buf[(second, (endpoint, variant, config))]
            m["Invocations"][1.0] += 1
            m["Invocation4XXErrors"][1.0 if 400 <= status < 500 else 0.0] += 1
            m["Invocation5XXErrors"][1.0 if status >= 500 else 0.0] += 1
            if model_us is not None:
                m["ModelLatency"][float(round(model_us))] += 1
            m["OverheadLatency"][float(round(overhead_us))] += 1

    def flush(self) -> None:
        with self._lock:
            buf, self._buf = self._buf, defaultdict(lambda: defaultdict(Counter))
        datums = [d for (second, key), metrics in buf.items() for d in _datums(second, key, metrics)]
        for i in range(0, len(datums), MAX_DATUMS_PER_CALL):
            try:
                self._cw.put_metric_data(Namespace=NAMESPACE, MetricData=datums[i : i + MAX_DATUMS_PER_CALL])
            except Exception:  # metrics must never break serving; the next flush carries on
                log.exception("put_metric_data failed")


def _datums(second: int, key: Key, metrics: dict[str, Counter[float]]) -> list[dict[str, Any]]:
    endpoint, variant, config = key
    base = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    dimension_sets = [base, [*base, {"Name": "EndpointConfigName", "Value": config}]]
    ts = datetime.fromtimestamp(second, tz=UTC)
    out = []
    for name, counts in metrics.items():
        unit = "Microseconds" if name.endswith("Latency") else "None"
        items = sorted(counts.items())
        for j in range(0, len(items), MAX_VALUES_PER_DATUM):
            chunk = items[j : j + MAX_VALUES_PER_DATUM]
            for dims in dimension_sets:
                out.append({
                    "MetricName": name, "Dimensions": dims, "Timestamp": ts, "Unit": unit,
                    "Values": [v for v, _ in chunk], "Counts": [float(c) for _, c in chunk],
                    "StorageResolution": 1,
                })
    return out
