import math
import random

import pytest
from pydantic import ValidationError

from functions.stats.verdict import (
    Decision,
    LatencySummary,
    MetricEvidence,
    VariantSample,
    VerdictPolicy,
    decide,
)


def latency(rng: random.Random, n: int, scale: float = 1.0, threshold: float | None = None) -> LatencySummary:
    return LatencySummary.from_values([rng.lognormvariate(math.log(20_000 * scale), 0.4) for _ in range(n)], threshold)


def variant(name: str, n: int, error_rate: float, rng: random.Random, scale: float = 1.0, threshold=None) -> VariantSample:
    errors = sum(rng.random() < error_rate for _ in range(n))
    return VariantSample(name=name, requests=n, errors=errors, latency=latency(rng, n, scale, threshold))


def test_latency_summary_from_values_and_histogram_agree():
    a = LatencySummary.from_values([1000, 2000, 2000, 4000], tail_threshold_micros=1500)
    b = LatencySummary.from_histogram([(1000, 1), (2000, 2), (4000, 1)], tail_threshold_micros=1500)
    assert a == b and a.count == 4 and a.exceed_count == 3
    assert a.mean_log == pytest.approx(math.log(2000))
    assert (a + b).count == 8 and (a + b).exceed_count == 6
    with pytest.raises(ValueError, match="positive"):
        LatencySummary.from_values([0.0])


def test_bad_samples_are_refused():
    with pytest.raises(ValidationError, match="cannot exceed"):
        VariantSample(name="x", requests=3, errors=4)
    with pytest.raises(ValidationError):
        VerdictPolicy(alpha=0.7)


def test_no_data_is_explicit():
    rng = random.Random(0)
    prod, shadow = variant("AllTraffic", 500, 0.01, rng), variant("Shadow", 20, 0.01, rng)
    v = decide(prod, shadow)
    assert v.decision is Decision.NO_DATA and v.action is None and "Shadow has 20 requests" in v.explanation
    final = decide(prod, shadow, final=True)
    assert final.decision is Decision.NO_DATA and final.action == "Remove"
    no_latency = VariantSample(name="Shadow", requests=500, errors=0)
    assert decide(prod, no_latency).decision is Decision.NO_DATA
    assert decide(prod, no_latency, VerdictPolicy(require_latency=False)).decision is not Decision.NO_DATA


def test_erroring_shadow_is_rejected_with_evidence():
    rng = random.Random(1)
    v = decide(variant("AllTraffic", 1000, 0.005, rng), variant("Shadow", 1000, 0.05, rng))
    assert v.decision is Decision.REJECT and v.action == "Remove"
    err = next(m for m in v.metrics if m.metric == "error_rate")
    assert err.decision is Decision.REJECT and err.threshold == pytest.approx(40)  # alpha split over 2 metrics
    assert err.ci_low > 0 and err.shadow_estimate > err.production_estimate
    assert v.explanation.startswith("REJECT: Shadow vs AllTraffic") and "error rate" in v.explanation


def test_slow_shadow_is_rejected_on_latency():
    rng = random.Random(2)
    v = decide(variant("AllTraffic", 400, 0.0, rng), variant("Shadow", 400, 0.0, rng, scale=1.5))
    assert v.decision is Decision.REJECT
    lat = next(m for m in v.metrics if m.metric == "log_latency")
    assert lat.decision is Decision.REJECT and lat.difference == pytest.approx(math.log(1.5), abs=0.1)


def test_tail_regression_uses_exceedance_counts():
    rng = random.Random(3)
    threshold = 20_000 * math.exp(0.4 * 2.326)  # production's p99
    prod = variant("AllTraffic", 3000, 0.0, rng, threshold=threshold)
    shadow = variant("Shadow", 3000, 0.0, rng, scale=1.5, threshold=threshold)
    v = decide(prod, shadow, VerdictPolicy(tail_threshold_micros=threshold))
    tail = next(m for m in v.metrics if m.metric == "latency_tail")
    assert tail.decision is Decision.REJECT and tail.shadow_estimate > 0.05


def test_equal_models_continue_then_promote():
    rng = random.Random(4)
    early = decide(variant("AllTraffic", 300, 0.005, rng), variant("Shadow", 300, 0.005, rng))
    assert early.decision is Decision.CONTINUE and early.action is None
    late = decide(variant("AllTraffic", 20_000, 0.005, rng), variant("Shadow", 20_000, 0.005, rng))
    assert late.decision is Decision.PROMOTE and late.action == "Promote"
    assert all(m.ci_high < m.margin for m in late.metrics)


def test_time_up_is_inconclusive_with_the_default_action():
    rng = random.Random(5)
    prod, shadow = variant("AllTraffic", 300, 0.005, rng), variant("Shadow", 300, 0.005, rng)
    v = decide(prod, shadow, VerdictPolicy(on_inconclusive="Promote"), final=True)
    assert v.decision is Decision.INCONCLUSIVE and v.action == "Promote" and "default action Promote" in v.explanation


def test_malformed_traffic_withholds_promotion():
    rng = random.Random(6)
    prod, shadow = variant("AllTraffic", 8000, 0.005, rng), variant("Shadow", 8000, 0.005, rng)
    assert decide(prod, shadow, malformed_fraction=0.1).decision is Decision.PROMOTE
    v = decide(prod, shadow, malformed_fraction=0.8)
    assert v.decision is Decision.CONTINUE and "malformed" in v.blocked_by
    assert decide(prod, shadow, malformed_fraction=0.8, final=True).decision is Decision.INCONCLUSIVE


def test_paired_rejection_overrides_good_counts():
    rng = random.Random(7)
    prod, shadow = variant("AllTraffic", 8000, 0.005, rng), variant("Shadow", 8000, 0.005, rng)
    paired = MetricEvidence(
        metric="paired_auc", decision=Decision.REJECT, production_samples=900, shadow_samples=900,
        production_estimate=0.80, shadow_estimate=0.74, difference=0.06, ci_low=0.03, ci_high=0.09, margin=0.01,
        p_value=1e-4, summary="AUC 0.74 vs 0.80",
    )
    v = decide(prod, shadow, paired=[paired], final=True)
    assert v.decision is Decision.REJECT and "AUC 0.74 vs 0.80" in v.explanation


def test_verdict_serializes_for_the_execution_document():
    rng = random.Random(8)
    v = decide(variant("AllTraffic", 1000, 0.005, rng), variant("Shadow", 1000, 0.05, rng))
    doc = v.model_dump(mode="json")
    assert doc["decision"] == "REJECT" and isinstance(doc["metrics"][0]["msprt"], float)


def test_samples_from_cloudwatch_metric_stats():
    errors = {"Sum": [0.0, 1.0, 2.0], "SampleCount": [100.0, 120.0, 80.0]}
    latency = {"Average": [1000.0, 2000.0, 4000.0], "SampleCount": [100.0, 120.0, 80.0]}
    v = VariantSample.from_metric_stats("AllTraffic", errors, latency)
    assert (v.requests, v.errors) == (300, 3) and v.latency is None and len(v.periods) == 3
    assert v.periods[1].latency_sum == 240_000.0 and v.latency_requests == 300  # Sum = Average x SampleCount
    with pytest.raises(ValueError, match="same periods"):
        VariantSample.from_metric_stats("x", errors, {"Average": [1.0], "SampleCount": [1.0]})
    # LatencySummary.from_period_stats refuses averages over several requests (the biased log of an average)
    with pytest.raises(ValueError, match="from_periods"):
        LatencySummary.from_period_stats([1000.0, 2000.0], [50.0, 1.0])
    assert LatencySummary.from_period_stats([1000.0, 2000.0], [1.0, 1.0]) == LatencySummary.from_values([1000, 2000])
    with pytest.raises(ValueError, match="averages but"):
        LatencySummary.from_period_stats([1.0], [1.0, 2.0])
    no_latency = VariantSample.from_metric_stats("x", errors)
    assert decide(no_latency, no_latency).decision is Decision.NO_DATA


def test_verdict_false_reject_rate_on_equal_models_is_within_alpha():
    """200 seeded A/A shadow tests, both metrics, polled every 100 requests up to 4,000."""
    import numpy as np

    rng = np.random.default_rng(2026)
    rejects = 0
    for _ in range(200):
        errors = rng.binomial(100, 0.01, (2, 40)).cumsum(axis=1)
        logs = rng.normal(10, 0.5, (2, 40, 100))
        s, ss = logs.sum(axis=2).cumsum(axis=1), (logs**2).sum(axis=2).cumsum(axis=1)
        for i in range(40):
            n = 100 * (i + 1)
            a, b = (
                VariantSample(name=name, requests=n, errors=int(errors[k, i]),
                              latency=LatencySummary(count=n, sum_log=float(s[k, i]), sum_log_sq=float(ss[k, i])))
                for k, name in enumerate(("AllTraffic", "Shadow"))
            )
            d = decide(a, b).decision
            if d in (Decision.REJECT, Decision.PROMOTE):
                rejects += d is Decision.REJECT
                break
    assert rejects / 200 <= 0.05
