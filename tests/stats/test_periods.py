"""The deployed path: verdicts from CloudWatch periods (audit §3 defects 1-6, 10, 15; issue 11).

Seeded simulations of per-minute Sum / SampleCount as CloudWatch returns them (`bench/cloudwatch_periods.py`),
decided by the real `decide`. Each bound is checked with enough runs that the old behaviour fails it by many
standard errors (old rates from the audit in the comments).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.cloudwatch_periods import Scenario, cumulative, simulate
from functions.stats.periods import Period, excess_rate, mean_ratio_cs, proportion_cs, ratio_cs, srm
from functions.stats.verdict import Decision, VariantSample, VerdictPolicy, decide


def run(sc: Scenario, sims: int, seed: int, *, poll: int = 10, policy: VerdictPolicy | None = None,
        canary: bool = False, mirrored: bool = False) -> dict[str, float]:
    """Share of runs whose first decision is REJECT / PROMOTE (shadow), or REJECT at any poll (canary)."""
    rng = np.random.default_rng(seed)
    policy = policy or VerdictPolicy()
    out = {"REJECT": 0, "PROMOTE": 0}
    steps = sc.minutes * 60 // sc.period
    for _ in range(sims):
        a, b = simulate(sc, rng)
        for k in range(poll, steps + 1, poll):
            v = decide(
                VariantSample.from_periods("old", cumulative(a, k)),
                VariantSample.from_periods("new", cumulative(b, k)),
                policy, mirrored=mirrored,
            )
            if v.decision is Decision.REJECT:
                out["REJECT"] += 1
                break
            if v.decision is Decision.PROMOTE and not canary:
                out["PROMOTE"] += 1
                break
    return {k: n / sims for k, n in out.items()}


# ---- the pure statistics -------------------------------------------------------------------------------


def test_rate_ratio_sequence_covers_with_small_counts_at_every_look():
    """Conditional binomial mixture: P(the CS ever excludes the true ratio) <= alpha, even at tiny counts."""
    rng = np.random.default_rng(11)
    misses, sims = 0, 300
    for _ in range(sims):
        rows: list[tuple[float, float, float, float]] = []
        for _t in range(20):
            n_a, n_b = int(rng.poisson(90)), int(rng.poisson(10))
            p_a = 0.01 * (1 + 2 * rng.random())  # a common drift in the base rate
            rows.append((rng.binomial(n_a, p_a), n_a, rng.binomial(n_b, 2 * p_a), n_b))  # true ratio 2
            if _t % 5 == 4:
                cs = ratio_cs(rows, 0.1)
                if not cs.low <= 2 <= cs.high:
                    misses += 1
                    break
    assert misses / sims <= 0.1


def test_one_arm_rate_sequence_is_exact_at_zero_events():
    cs = proportion_cs(0, 2000, 0.05)
    assert cs.low == 0.0 and 0.001 < cs.high < 0.005  # zero errors is information, not zero variance
    assert proportion_cs(0, 10, 0.05).high > 0.2  # ten requests say little
    with pytest.raises(ValueError):
        proportion_cs(5, 3, 0.05)


def test_mean_ratio_is_unbiased_when_arms_get_different_counts_per_period():
    """Defect 1: log of per-minute averages is biased by the count; the ratio of arithmetic means is not."""
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(600):
        n_a, n_b = 60, 3
        rows.append((float(np.exp(rng.normal(10, 1, n_a)).sum()), n_a, float(np.exp(rng.normal(10, 1, n_b)).sum()), n_b))
    cs = mean_ratio_cs(rows, 0.05)
    assert cs.low < 1 < cs.high and abs(cs.estimate - 1) < 0.08
    old = np.mean([math.log(s_b / n_b) - math.log(s_a / n_a) for s_a, n_a, s_b, n_b in rows])
    assert old < -0.15  # what the old estimator reported for these equal arms (the audit's -0.24)


def test_sample_ratio_mismatch():
    assert srm(5_000, 100_000, 0.05)[0] is False
    assert srm(4_000, 100_000, 0.05)[0] is True
    prod = VariantSample.from_periods("AllTraffic", [Period(60.0 * i, 1000, 5, 2e7, 1000) for i in range(20)])
    shadow = VariantSample.from_periods("Shadow", [Period(60.0 * i, 30, 0, 6e5, 30) for i in range(20)])
    v = decide(prod, shadow, mirrored=True, expected_share=0.05)
    assert v.decision is not Decision.PROMOTE and "sample-ratio mismatch" in (v.blocked_by or "")


# ---- the deployed path ---------------------------------------------------------------------------------


def test_sampled_slow_shadow_is_not_promoted():
    """20 %-slower shadow at 5 % sampling of 100 req/min (sigma = 1): the old path PROMOTED 85 %."""
    sc = Scenario(minutes=360, rate=100 / 60, sampling=0.05, sigma=1.0, scale_b=1.2, error_a=0.0)
    r = run(sc, 25, 1, poll=60, mirrored=True)
    assert r["PROMOTE"] <= 0.05


def test_unequal_fleets_equal_models_are_not_rejected():
    """Old fleet 25 % / new 75 %, 8 req/min, sigma = 1, 6 h: the old path REJECTED equal models 70 %."""
    sc = Scenario(minutes=360, rate=8 / 60, mirrored=False, share=0.75, sigma=1.0, error_a=0.005)
    r = run(sc, 30, 2, poll=60, canary=True)
    assert r["REJECT"] <= 0.05


def test_ramping_share_with_common_drift_is_not_rejected():
    """Defect 10: share 10 -> 50 %, latency +30 % and errors 0.5 -> 1.5 % over the test, equal models:
    the old cumulative pooling REJECTED at some poll 100 %."""
    sc = Scenario(
        minutes=120, rate=5.0, mirrored=False, share=lambda t: 0.1 + 0.4 * t / 120, error_a=0.005,
        drift=lambda t: (1 + 0.3 * t / 120, 1 + 2 * t / 120),
    )
    r = run(sc, 25, 3, poll=20, canary=True)
    assert r["REJECT"] <= 0.05


def test_small_arm_at_the_error_margin_is_not_promoted():
    """Defect 4: 10/90 split, errors 0.5 % -> 1.0 % (= the +0.5 pp margin): the Wald CS PROMOTED 11.4 %."""
    rng = np.random.default_rng(4)
    policy, promoted, sims = VerdictPolicy(require_latency=False), 0, 200  # the old Wald CS: 10 % on these seeds
    n_b = np.arange(1000, 20_001, 1000) // 10  # polls every 1,000 requests in all, 10 % to the new arm
    for _ in range(sims):
        e_a = rng.binomial(9 * (n_b - np.r_[0, n_b[:-1]]), 0.005).cumsum()
        e_b = rng.binomial(n_b - np.r_[0, n_b[:-1]], 0.010).cumsum()
        for k in range(len(n_b)):
            v = decide(VariantSample(name="old", requests=int(9 * n_b[k]), errors=int(e_a[k])),
                       VariantSample(name="new", requests=int(n_b[k]), errors=int(e_b[k])), policy)
            if v.decision in (Decision.REJECT, Decision.PROMOTE):
                promoted += v.decision is Decision.PROMOTE
                break
    assert promoted / sims <= 0.05


def test_default_canary_decides_within_the_bake():
    """Defect 3: 60-s periods, 300-s bake, 25 % canary at 10 req/s, new fleet 20 % errors: NO_DATA 100 % before."""
    sc = Scenario(minutes=5, rate=10.0, mirrored=False, share=0.25, error_a=0.005, error_b=0.2)
    r = run(sc, 50, 5, poll=1, canary=True)
    assert r["REJECT"] >= 0.95


def test_tail_only_regression_is_rejected():
    """Defect 2: 2 % of the shadow's requests 10x slower (geometric mean +4.7 %): PROMOTED 31 % before."""
    sc = Scenario(minutes=60, rate=10.0, sampling=1.0, tail_frac=0.02, tail_mult=10.0, error_a=0.0, sigma=0.5)
    r = run(sc, 30, 6, poll=5, mirrored=True)
    assert r["REJECT"] >= 0.9 and r["PROMOTE"] == 0


def test_regression_inside_the_margin_is_not_rejected():
    """Defect 5: latency x1.03 with a x1.10 margin was REJECTED 33 % (shadow) / 99.7 % (canary)."""
    sc = Scenario(minutes=120, rate=10.0, sampling=1.0, scale_b=1.03, error_a=0.005)
    r = run(sc, 25, 7, poll=10, canary=True, mirrored=True)
    assert r["REJECT"] <= 0.05


def test_equal_mirrored_models_are_promoted_at_10_req_s():
    sc = Scenario(minutes=60, rate=10.0, sampling=1.0, error_a=0.005)
    r = run(sc, 30, 8, poll=5, mirrored=True)
    assert r["REJECT"] == 0 and r["PROMOTE"] >= 0.9


# ---- issue 11 and the gates ----------------------------------------------------------------------------


def _arm(name: str, periods: int, errors: float = 0, client: float = 0) -> VariantSample:
    return VariantSample.from_periods(
        name,
        [Period(60.0 * i, 200, errors * (i == periods - 1), 4e6, 200, None, client * (i == periods - 1)) for i in range(periods)],
    )


def test_shadow_failing_requests_production_answered_is_rejected():
    v = decide(_arm("AllTraffic", 10), _arm("Shadow", 10, client=2), mirrored=True)
    assert v.decision is Decision.REJECT and v.action == "Remove" and "(4XX)" in v.explanation
    # 5XX beyond production's: judged by the statistics, but never left INCONCLUSIVE / NO_DATA at the end
    v = decide(_arm("AllTraffic", 4), _arm("Shadow", 4, errors=1), mirrored=True, final=True)
    assert v.decision is Decision.REJECT and "inconclusive" in v.explanation
    v = decide(_arm("AllTraffic", 1), _arm("Shadow", 1, errors=1), mirrored=True, final=True)
    assert v.decision is Decision.REJECT
    assert decide(_arm("AllTraffic", 4), _arm("Shadow", 4, errors=1), mirrored=True).decision is Decision.CONTINUE
    same = decide(_arm("AllTraffic", 10, errors=2), _arm("Shadow", 10, errors=2), mirrored=True, final=True)
    assert same.decision is not Decision.REJECT  # production failed those requests too


def test_no_evidence_never_promotes_and_the_gate_counts_requests():
    few = decide(_arm("AllTraffic", 1), _arm("Shadow", 1), VerdictPolicy(on_inconclusive="Promote"), final=True)
    assert few.decision is Decision.NO_DATA and few.action == "Remove"
    # 3 periods of 200 requests: enough requests, not 30 periods: the gate no longer waits for minute 30
    assert decide(_arm("AllTraffic", 3), _arm("Shadow", 3)).decision is not Decision.NO_DATA


def test_excess_rate_bounds_agree_with_the_zones():
    big = excess_rate([(5, 1000, 50, 1000)], 0.05)
    assert big.low > 0.005 and big.ratio.low > 1
    none = excess_rate([(0, 5000, 0, 5000)], 0.05)
    assert none.high < 0.005 and none.low <= 0
