"""Always-valid (anytime) tests: the mixture sequential probability ratio test and its confidence sequence.

Johari, Pekelis, Walsh, "Always valid inference: continuous monitoring of A/B tests" (KDD 2017 / Operations
Research 2022). For an estimate θ̂ ~ N(θ, v) (v shrinking as samples accrue) and a normal mixing distribution
N(θ0, τ²) over the alternative, the mixture likelihood ratio against H0: θ = θ0 is

    Λ = sqrt(v / (v + τ²)) · exp(τ² (θ̂ - θ0)² / (2 v (v + τ²)))

Λ is a nonnegative martingale under H0, so by Ville's inequality P(sup_n Λ_n ≥ 1/alpha) <= alpha: the test may be
re-evaluated at every poll, and stopped at any time, without inflating the type-I error. Inverting it gives a
confidence sequence (an interval valid simultaneously at all times).
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Interval(NamedTuple):
    low: float
    high: float


def log_mixture_lr(estimate: float, variance: float, null: float, tau: float) -> float:
    """log Λ of the normal-mixture SPRT (logs: Λ overflows floats for clear effects)."""
    if variance <= 0 or tau <= 0:
        raise ValueError("variance and tau must be positive")
    t2 = tau * tau
    return 0.5 * math.log(variance / (variance + t2)) + t2 * (estimate - null) ** 2 / (
        2.0 * variance * (variance + t2)
    )


def confidence_sequence(estimate: float, variance: float, tau: float, alpha: float) -> Interval:
    """All θ0 the mSPRT does not reject at level alpha: θ̂ ± sqrt(v(v+τ²)/τ² · (2 log(1/alpha) + log((v+τ²)/v)))."""
    if variance <= 0 or tau <= 0:
        raise ValueError("variance and tau must be positive")
    t2 = tau * tau
    half = math.sqrt(variance * (variance + t2) / t2 * (2.0 * math.log(1.0 / alpha) + math.log((variance + t2) / variance)))
    return Interval(estimate - half, estimate + half)


class TwoSample(NamedTuple):
    """One metric compared between two variants: estimate of the difference (b - a) and its variances."""

    mean_a: float
    mean_b: float
    difference: float
    variance: float  # of the difference, unpooled: for the confidence sequence
    null_variance: float  # of the difference under H0 (pooled where that applies): for the test


def bernoulli_difference(events_a: int, n_a: int, events_b: int, n_b: int) -> TwoSample:
    """Difference of two proportions (b - a).

    Variances use add-½ smoothed rates so that zero events (the usual case for errors) never give a zero
    variance, which would make the normal approximation claim certainty after a handful of requests.
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both samples need at least one request")
    if not (0 <= events_a <= n_a and 0 <= events_b <= n_b):
        raise ValueError("event counts must lie between 0 and the number of requests")
    pa, pb = events_a / n_a, events_b / n_b
    sa, sb = (events_a + 0.5) / (n_a + 1), (events_b + 0.5) / (n_b + 1)
    pooled = (events_a + events_b + 0.5) / (n_a + n_b + 1)
    return TwoSample(
        mean_a=pa,
        mean_b=pb,
        difference=pb - pa,
        variance=sa * (1 - sa) / n_a + sb * (1 - sb) / n_b,
        null_variance=pooled * (1 - pooled) * (1 / n_a + 1 / n_b),
    )


def mean_difference(
    n_a: int, mean_a: float, var_a: float, n_b: int, mean_b: float, var_b: float, variance_floor: float = 1e-12
) -> TwoSample:
    """Difference of two means (b - a) with Welch's variance; `var_*` are per-observation sample variances."""
    if n_a < 2 or n_b < 2:
        raise ValueError("both samples need at least two observations")
    v = max(var_a / n_a + var_b / n_b, variance_floor)
    return TwoSample(mean_a=mean_a, mean_b=mean_b, difference=mean_b - mean_a, variance=v, null_variance=v)


class SequentialResult(NamedTuple):
    log_lr: float  # log Λ at the null "no difference"
    interval: Interval  # always-valid (1 - alpha) confidence sequence for the difference
    worse: bool  # Λ ≥ 1/alpha and the difference points to "b worse" (higher)
    non_inferior: bool  # the upper bound of the confidence sequence is below the margin


def judge_higher_is_worse(sample: TwoSample, *, tau: float, alpha: float, margin: float) -> SequentialResult:
    """Sequential verdict on one metric where a higher value for b is worse (errors, latency)."""
    log_lr = log_mixture_lr(sample.difference, sample.null_variance, 0.0, tau)
    interval = confidence_sequence(sample.difference, sample.variance, tau, alpha)
    worse = log_lr >= math.log(1.0 / alpha) and sample.difference > 0
    return SequentialResult(log_lr, interval, worse, interval.high < margin)
