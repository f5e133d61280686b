"""Shadow-test analysis: production vs shadow variant, behind ONE function, `analyze`.

Today: CloudWatch metrics of both variants (5XX rate from Invocation5XXErrors Sum/SampleCount, ModelLatency
average and p99) against thresholds. A sequential test can replace `decide` without changing callers.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from functions.adapters import cloudwatch
from functions.config import Settings
from functions.models import ShadowAnalysis, VariantStats, Verdict

NAMESPACE = "AWS/SageMaker"


def _period(start: datetime, end: datetime) -> int:
    # One bucket over the window if possible; periods of >= 60 s must be multiples of 60.
    seconds = max(60, math.ceil((end - start).total_seconds()))
    return math.ceil(seconds / 60) * 60


def variant_stats(endpoint: str, variant: str, start: datetime, end: datetime) -> VariantStats:
    """Aggregate a variant's metrics over [start, end) (series with dimensions EndpointName, VariantName)."""
    dims = {"EndpointName": endpoint, "VariantName": variant}
    window: dict[str, Any] = {
        "namespace": NAMESPACE,
        "dimensions": dims,
        "start": start,
        "end": end,
        "period": _period(start, end),
    }
    errors = cloudwatch.metric_stats(metric="Invocation5XXErrors", stats=["Sum", "SampleCount"], **window)
    latency = cloudwatch.metric_stats(metric="ModelLatency", stats=["Average", "SampleCount"], **window)
    p99 = _p99(window)
    invocations = sum(errors["SampleCount"])
    failed = sum(errors["Sum"])
    weights, averages = latency["SampleCount"], latency["Average"]
    latency_avg = (
        sum(a * w for a, w in zip(averages, weights, strict=True)) / sum(weights)
        if averages and len(averages) == len(weights) and sum(weights) > 0
        else None
    )
    return VariantStats(
        variant=variant,
        invocations=invocations,
        errors_5xx=failed,
        error_rate=failed / invocations if invocations else None,
        latency_avg_us=latency_avg,
        latency_p99_us=max(p99) if p99 else None,  # the worst bucket: conservative
    )


_percentiles = {"supported": True}  # False after the first failure: moto, for one, cannot compute percentiles


def _p99(window: dict[str, Any]) -> list[float]:
    if not _percentiles["supported"]:
        return []
    try:
        return cloudwatch.metric_stats(metric="ModelLatency", stats=["p99"], optional=True, **window)["p99"]
    except Exception:  # optional evidence: any failure (an AWS error, moto's serializer...) means "not available"
        _percentiles["supported"] = False
        return []


def decide(production: VariantStats, shadow: VariantStats, settings: Settings) -> tuple[Verdict, list[str]]:
    """Threshold rules (pure). No or too little data is INCONCLUSIVE, never a pass."""
    if shadow.invocations < settings.shadow_min_invocations or production.invocations == 0:
        return Verdict.INCONCLUSIVE, [
            f"not enough traffic: shadow {shadow.invocations:.0f} request(s) "
            f"(need {settings.shadow_min_invocations}), production {production.invocations:.0f}"
        ]
    reasons: list[str] = []
    prod_rate, shadow_rate = production.error_rate or 0.0, shadow.error_rate or 0.0
    if shadow_rate - prod_rate > settings.shadow_max_error_rate_delta:
        reasons.append(
            f"shadow 5XX rate {shadow_rate:.2%} exceeds production's {prod_rate:.2%} "
            f"by more than {settings.shadow_max_error_rate_delta:.2%}"
        )
    for label, prod_v, shadow_v in (
        ("average", production.latency_avg_us, shadow.latency_avg_us),
        ("p99", production.latency_p99_us, shadow.latency_p99_us),
    ):
        # Slower by the ratio AND by more than the slack: sub-millisecond jitter is not a regression.
        if (
            prod_v
            and shadow_v
            and shadow_v > prod_v * settings.shadow_max_latency_ratio
            and shadow_v - prod_v > settings.shadow_latency_slack_micros
        ):
            reasons.append(
                f"shadow {label} latency {shadow_v:.0f}µs is over {settings.shadow_max_latency_ratio}x "
                f"production's {prod_v:.0f}µs"
            )
    if reasons:
        return Verdict.REJECT, reasons
    return Verdict.PROMOTE, [
        f"shadow 5XX rate {shadow_rate:.2%} vs production {prod_rate:.2%}; latency within "
        f"{settings.shadow_max_latency_ratio}x over {shadow.invocations:.0f} shadow request(s)"
    ]


def analyze(
    endpoint: str,
    production_variant: str,
    shadow_variant: str,
    start: datetime,
    end: datetime,
    settings: Settings,
) -> ShadowAnalysis:
    """Compare the two variants over [start, end) and return a verdict with its evidence."""
    production = variant_stats(endpoint, production_variant, start, end)
    shadow = variant_stats(endpoint, shadow_variant, start, end)
    verdict, reasons = decide(production, shadow, settings)
    return ShadowAnalysis(verdict=verdict, reasons=reasons, production=production, shadow=shadow)
