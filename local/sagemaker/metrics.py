"""Per-request invocation metrics, published to CloudWatch (namespace AWS/SageMaker) the way SageMaker does.

SageMaker publishes invocation metrics once per period: 60 s, unless the endpoint config's MetricsConfig has
`EnableEnhancedMetrics: true` and a `MetricPublishFrequencyInSeconds` (10, 30, 60, 120, 180, 240, 300):
"When EnableEnhancedMetrics is set to False, this interval applies to utilization metrics only; invocation
metrics continue to be published at the default 60-second interval. When EnableEnhancedMetrics is set to True,
this interval applies to both utilization and invocation metrics."
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_MetricsConfig.html)

So requests are aggregated per period (aligned on multiples of the period, epoch-based) and a period is sent
only once it is over, with the period's start as its timestamp (an assumption: AWS does not document the
timestamp; CloudWatch's own periods are aligned the same way). Periods under 60 s are sent as high-resolution
data (StorageResolution 1). Each request is kept as a value (Values/Counts of distinct values), so percentiles
and 0/1 error rates computed from CloudWatch are exact. `stop()` sends the periods still open.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from local.sagemaker.flusher import PeriodicFlusher

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
MAX_VALUES_PER_DATUM = 150  # PutMetricData limit for Values/Counts
MAX_DATUMS_PER_CALL = 1000

DEFAULT_PERIOD = 60
PUBLISH_FREQUENCIES = (10, 30, 60, 120, 180, 240, 300)  # MetricsConfig.MetricPublishFrequencyInSeconds
clock = time.time  # module-level so a test can move time

# (endpoint, variant, endpoint config) → metric name → value → count
Key = tuple[str, str, str]


def publish_period(metrics_config: dict[str, Any] | None) -> int:
    """The invocation-metrics period an endpoint config asks for (see the module docstring)."""
    mc = metrics_config or {}
    if mc.get("EnableEnhancedMetrics") and mc.get("MetricPublishFrequencyInSeconds"):
        return int(mc["MetricPublishFrequencyInSeconds"])
    return DEFAULT_PERIOD


class MetricsPublisher(PeriodicFlusher):
    def __init__(self, cloudwatch: Any, interval: float = 1.0) -> None:
        super().__init__(interval, "sm-metrics")
        self._cw = cloudwatch
        # (period start, period) + key → metric name → value → count
        self._buf: dict[tuple[int, int, Key], dict[str, Counter[float]]] = defaultdict(lambda: defaultdict(Counter))
        self._final = False

    def record(
        self, endpoint: str, variant: str, config: str, status: int, model_us: float | None, overhead_us: float,
        period: int = DEFAULT_PERIOD,
    ) -> None:
        """One invocation; `status` is what the caller saw (the container's status for a ModelError)."""
        start = int(clock()) // period * period
        with self._lock:
            m = self._buf[(start, period, (endpoint, variant, config))]
            m["Invocations"][1.0] += 1
            m["Invocation4XXErrors"][1.0 if 400 <= status < 500 else 0.0] += 1
            m["Invocation5XXErrors"][1.0 if status >= 500 else 0.0] += 1
            if model_us is not None:
                m["ModelLatency"][float(round(model_us))] += 1
            m["OverheadLatency"][float(round(overhead_us))] += 1

    def stop(self) -> None:
        self._final = True  # the last flush sends the periods still open
        super().stop()

    def flush(self) -> None:
        now = clock()
        with self._lock:
            due = [k for k in self._buf if self._final or k[0] + k[1] <= now]
            buf = {k: self._buf.pop(k) for k in due}
        datums = [d for (start, period, key), metrics in buf.items() for d in _datums(start, period, key, metrics)]
        for i in range(0, len(datums), MAX_DATUMS_PER_CALL):
            try:
                self._cw.put_metric_data(Namespace=NAMESPACE, MetricData=datums[i : i + MAX_DATUMS_PER_CALL])
            except Exception:  # metrics must never break serving; the next flush carries on
                log.exception("put_metric_data failed")


def _datums(start: int, period: int, key: Key, metrics: dict[str, Counter[float]]) -> list[dict[str, Any]]:
    endpoint, variant, config = key
    base = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    dimension_sets = [base, [*base, {"Name": "EndpointConfigName", "Value": config}]]
    ts = datetime.fromtimestamp(start, tz=UTC)
    resolution = 1 if period < 60 else 60
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
                    "StorageResolution": resolution,
                })
    return out
