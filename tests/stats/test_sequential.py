import math
import random

import numpy as np
import pytest

from functions.stats.sequential import (
    bernoulli_difference,
    confidence_sequence,
    judge_higher_is_worse,
    log_mixture_lr,
    mean_difference,
)


def test_mixture_lr_matches_its_integral():
    # Λ = ∫ N(θ̂; θ, v) N(θ; 0, τ²) dθ / N(θ̂; 0, v): check the closed form by numerical integration
    est, v, tau = 0.03, 0.0004, 0.02
    grid = np.linspace(-0.3, 0.3, 200_001)
    like = np.exp(-((est - grid) ** 2) / (2 * v)) * np.exp(-(grid**2) / (2 * tau**2)) / math.sqrt(2 * math.pi * tau**2)
    numeric = np.trapezoid(like, grid) / math.exp(-(est**2) / (2 * v))
    assert math.exp(log_mixture_lr(est, v, 0.0, tau)) == pytest.approx(numeric, rel=1e-6)


def test_confidence_sequence_is_the_inverted_test():
    est, v, tau, alpha = 0.01, 2e-5, 0.01, 0.05
    lo, hi = confidence_sequence(est, v, tau, alpha)
    for boundary in (lo, hi):  # Λ at the boundary equals 1/alpha exactly
        assert log_mixture_lr(est, v, boundary, tau) == pytest.approx(math.log(1 / alpha), rel=1e-9)
    assert log_mixture_lr(est, v, est, tau) < math.log(1 / alpha)


def test_confidence_sequence_is_wider_than_the_fixed_sample_interval():
    lo, hi = confidence_sequence(0.0, 1e-4, 0.02, 0.05)
    assert hi - lo > 2 * 1.96 * 0.01


def test_bernoulli_difference_never_has_zero_variance():
    s = bernoulli_difference(0, 200, 0, 200)
    assert s.difference == 0 and s.variance > 0 and s.null_variance > 0
    with pytest.raises(ValueError):
        bernoulli_difference(5, 4, 0, 10)
    with pytest.raises(ValueError):
        bernoulli_difference(0, 0, 0, 10)


def test_mean_difference_welch_variance():
    s = mean_difference(100, 1.0, 4.0, 50, 1.5, 1.0)
    assert s.difference == 0.5 and s.variance == pytest.approx(4 / 100 + 1 / 50)
    with pytest.raises(ValueError):
        mean_difference(1, 0, 0, 5, 0, 1)


def test_type_one_error_under_continuous_monitoring():
    """Equal error rates, 300 tests peeked every 50 requests up to 5,000: false rejects stay within alpha."""
    rng = random.Random(42)
    alpha, p, tests, rejects = 0.05, 0.02, 300, 0
    for _ in range(tests):
        ea = eb = n = 0
        for _poll in range(100):
            ea += sum(rng.random() < p for _ in range(50))
            eb += sum(rng.random() < p for _ in range(50))
            n += 50
            if judge_higher_is_worse(bernoulli_difference(ea, n, eb, n), tau=0.01, alpha=alpha, margin=0.005).worse:
                rejects += 1
                break
    assert rejects / tests <= alpha


def test_clear_regression_is_caught_and_equal_models_are_promoted_with_enough_data():
    worse = judge_higher_is_worse(bernoulli_difference(5, 1000, 50, 1000), tau=0.01, alpha=0.05, margin=0.005)
    assert worse.worse and not worse.non_inferior and worse.interval.low > 0
    same = judge_higher_is_worse(bernoulli_difference(50, 10_000, 50, 10_000), tau=0.01, alpha=0.05, margin=0.005)
    assert same.non_inferior and not same.worse
