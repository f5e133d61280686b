"""Item 6: the plan before a test, and its agreement with the simulated deployed path."""

import statistics

import numpy as np

from bench.cloudwatch_periods import Scenario, cumulative, simulate
from functions.stats.plan import lognormal_cv2, plan
from functions.stats.verdict import Decision, VariantSample, decide


def test_default_canary_at_low_traffic_is_flagged_as_undecidable():
    """Template defaults: 300-s bake, 25 % canary, 60-s periods; 2 req/s in all."""
    p = plan(production_rps=1.5, candidate_rps=0.5, duration_seconds=300, period_seconds=60)
    assert not p.decidable and p.p_inconclusive > 0.9 and p.explanation.startswith("WARNING")
    assert "error_rate" in p.explanation and "margin" in p.explanation


def test_busy_mirrored_shadow_is_decidable_quickly():
    p = plan(production_rps=100, candidate_rps=100, duration_seconds=3600, period_seconds=60, latency_cv2=0.28)
    assert p.decidable and p.minutes_to_decision <= 5 and p.p_inconclusive < 0.01


def test_plan_matches_the_simulated_time_to_promote():
    """10 req/s mirrored, equal models: the plan's minutes vs the median of 20 simulated tests (poll each minute)."""
    sc = Scenario(minutes=40, rate=10.0, sampling=1.0, error_a=0.005, sigma=0.5)
    p = plan(production_rps=10, candidate_rps=10, duration_seconds=40 * 60, period_seconds=60,
             latency_cv2=lognormal_cv2(20_000, 20_000 * np.exp(0.5 * 2.3263478740408408)))
    rng = np.random.default_rng(21)
    times = []
    for _ in range(20):
        a, b = simulate(sc, rng)
        for k in range(2, 41):
            v = decide(VariantSample.from_periods("p", cumulative(a, k)), VariantSample.from_periods("s", cumulative(b, k)))
            if v.decision is Decision.PROMOTE:
                times.append(k)
                break
    assert len(times) >= 18
    assert 0.5 <= statistics.median(times) / p.minutes_to_decision <= 1.6


def test_cv2_from_percentiles():
    assert abs(lognormal_cv2(20_000, 20_000 * np.exp(2.3263478740408408)) - (np.e - 1)) < 1e-9
    assert lognormal_cv2(None, 5.0) == 0.5


def test_canary_refusal_arithmetic():
    """A bake must span min_periods metric periods (the template's 300 s of 60 s: 5; local 20 s of 10 s: 2)."""
    from functions.stats.plan import canary_refusal

    assert canary_refusal("CANARY", wait_interval_seconds=300, metric_period_seconds=60, share_percent=25) is None
    assert canary_refusal("LINEAR", wait_interval_seconds=20, metric_period_seconds=10, share_percent=25) is None
    assert canary_refusal("ALL_AT_ONCE", wait_interval_seconds=0, metric_period_seconds=60, share_percent=25) is None
    text = canary_refusal("LINEAR", wait_interval_seconds=90, metric_period_seconds=60, share_percent=20)
    assert text is not None and "90-s bake" in text and "spans 1 period" in text and ">= 120 s" in text
    assert "<= 45 s" in text and "100 requests" in text


def test_a_plan_that_cannot_decide_survives_the_state_machine_json():
    # With no production traffic the half-widths are infinite; the plan is stored in $.shadow.plan (JSON, where
    # pydantic writes inf as null) and read back by every poll: it must validate again, not fail the execution.
    from functions.stats.plan import Plan

    p = plan(production_rps=0.0, candidate_rps=0.0, duration_seconds=120, period_seconds=10, tail=True)
    assert not p.decidable
    again = Plan.model_validate_json(p.model_dump_json())
    assert again.decidable is False and again.metrics[0].metric == "error_rate"
    assert Plan.model_validate(p.model_dump(mode="json")) == again
