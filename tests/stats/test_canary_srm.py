"""The canary's sample-ratio check (issue 13): during the canary step the new fleet's share of requests must be
its capacity share. A mismatch makes the verdict invalid for PROMOTE (never a silent pass); the provisioning
periods (old fleet only), the full shift (new fleet only) and the two partial periods at the step's edges are
not part of the step."""

from __future__ import annotations

import numpy as np

from functions.stats.periods import Period
from functions.stats.verdict import Decision, VariantSample, decide


def _fleets(canary_share: float, *, rate: int = 6000, seed: int = 3) -> tuple[VariantSample, VariantSample]:
    """2 provisioning minutes, an activation minute half in the canary, 12 canary minutes, a shift minute half
    in the canary, 3 full minutes; equal models (0.5 % errors, 20 ms +- 1 %)."""
    rng = np.random.default_rng(seed)
    shares = [0.0, 0.0, canary_share / 2] + [canary_share] * 12 + [(1 + canary_share) / 2] + [1.0] * 3
    old, new = [], []
    for i, share in enumerate(shares):
        n_new = int(rng.binomial(rate, share))
        for arm, n in ((old, rate - n_new), (new, n_new)):
            if n > 0:
                lat = 20_000 * n * (1 + rng.normal(0, 0.01))
                arm.append(Period(60.0 * i, n, float(rng.binomial(n, 0.005)), lat, n))
    return VariantSample.from_periods("old-cfg", old), VariantSample.from_periods("new-cfg", new)


def test_canary_at_its_capacity_share_is_promoted_despite_the_step_edges():
    old, new = _fleets(0.25)
    v = decide(old, new, expected_share=0.25)
    assert v.decision is Decision.PROMOTE and v.blocked_by is None, v.explanation


def test_canary_share_below_its_capacity_share_is_not_promoted():
    """The new fleet got 15 % of the requests where its capacity promised 25 %: the arms do not see the traffic
    the test assumes (a routing or health-check problem), so no PROMOTE."""
    old, new = _fleets(0.15)
    v = decide(old, new, expected_share=0.25)
    assert v.decision is not Decision.PROMOTE
    assert "sample-ratio mismatch" in (v.blocked_by or "") and "25" in (v.blocked_by or "")
    assert decide(old, new, expected_share=0.15).decision is Decision.PROMOTE  # the same data at its share


def test_step_edges_alone_would_fake_a_mismatch():
    """Pooling every period (provisioning, edges, full shift) would report a mismatch for a correct canary."""
    from functions.stats.periods import srm

    old, new = _fleets(0.25)
    assert srm(new.requests, old.requests + new.requests, 0.25)[0] is True


def _linear(factor: float, *, rate: int = 600, seed: int = 5) -> tuple[VariantSample, VariantSample]:
    """LINEAR 25 % steps of 4 minutes, each with its edge minutes; the new fleet gets `factor` x its share."""
    rng = np.random.default_rng(seed)
    shares = [0.0, 0.0]
    for step in (0.25, 0.5, 0.75):
        shares += [step - 0.125] + [step] * 4
    shares += [0.875] + [1.0] * 3
    old, new = [], []
    for i, share in enumerate(shares):
        n_new = int(rng.binomial(rate, min(share * factor, 1.0)))
        for arm, n in ((old, rate - n_new), (new, n_new)):
            if n > 0:
                arm.append(Period(60.0 * i, n, float(rng.binomial(n, 0.005)), 20_000.0 * n, n))
    return VariantSample.from_periods("old-cfg", old), VariantSample.from_periods("new-cfg", new)


def test_linear_steps_never_below_their_first_share_pass():
    """LINEAR has one share per step: the check is that the new fleet never gets less than its first step's
    capacity share (edges between steps and the final shift lie above it)."""
    for seed in range(100):
        old, new = _linear(1.0, seed=seed)
        assert decide(old, new, minimum_share=0.25).blocked_by is None, seed


def test_linear_new_fleet_underserved_is_a_mismatch():
    old, new = _linear(0.5)  # routing gives the new fleet half of its capacity share at every step
    v = decide(old, new, minimum_share=0.25)
    assert v.decision is not Decision.PROMOTE and "sample-ratio mismatch" in (v.blocked_by or "")
    assert "at least 25" in (v.blocked_by or "")


def test_minimum_share_test_is_valid_at_the_boundary_and_catches_a_halved_share():
    """bench/srm_sim.py in small: at exactly the first step's share no run is flagged at alpha 0.05 over 30
    looks (a test supermartingale: at most 5 %); half the share is caught at 600 requests per period."""
    from functions.stats.periods import srm_at_least

    rng = np.random.default_rng(11)
    flagged = 0
    for _ in range(200):
        rows = []
        for _ in range(30):
            n = int(rng.poisson(60))
            rows.append((float(rng.binomial(n, 0.25)), float(n)))
            if srm_at_least(rows, 0.25, 0.05)[0]:
                flagged += 1
                break
    assert flagged <= 4  # <= 2 % (nominal bound 5 %)
    assert srm_at_least([(float(rng.binomial(600, 0.125)), 600.0) for _ in range(3)], 0.25, 0.001)[0]
