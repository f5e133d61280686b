"""Distribution functions in pure Python (stdlib only: this runs in a Lambda without numpy/scipy).

Normal via `statistics.NormalDist`; chi-square survival via the regularized upper incomplete gamma
(series / Lentz continued fraction, Numerical Recipes §6.2); the Kolmogorov limiting distribution; exact
binomial tails in log space for McNemar's test.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_STD_NORMAL = NormalDist()
_EPS = 1e-15
_MAX_ITER = 10_000


def normal_cdf(x: float) -> float:
    return _STD_NORMAL.cdf(x)


def normal_sf(x: float) -> float:
    """Upper tail P(Z > x), accurate far into the tail (erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"normal_ppf needs 0 < p < 1, got {p}")
    return _STD_NORMAL.inv_cdf(p)


def _gamma_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) by its power series (converges fast for x < a + 1)."""
    term = 1.0 / a
    total = term
    ap = a
    for _ in range(_MAX_ITER):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_continued_fraction(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) by Lentz's continued fraction (for x >= a + 1)."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h * math.exp(-x + a * math.log(x) - math.lgamma(a))


def gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a)."""
    if a <= 0:
        raise ValueError(f"gamma_q needs a > 0, got {a}")
    if x < 0:
        raise ValueError(f"gamma_q needs x >= 0, got {x}")
    if x == 0:
        return 1.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _gamma_series(a, x))
    return _gamma_continued_fraction(a, x)


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for X ~ chi-square(df)."""
    if df <= 0:
        raise ValueError(f"chi2_sf needs df > 0, got {df}")
    if x <= 0:
        return 1.0
    return gamma_q(df / 2.0, x / 2.0)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution: 2 Σ (-1)^(k-1) exp(-2 k² x²).

    For small x the alternating series converges slowly; use the Jacobi-theta form of the CDF there.
    """
    if x <= 0:
        return 1.0
    if x < 1.0:
        # CDF = sqrt(2π)/x Σ_{k>=1} exp(-(2k-1)² π² / (8x²))
        s = sum(math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x)) for k in range(1, 8))
        return 1.0 - math.sqrt(2 * math.pi) / x * s
    total = 0.0
    for k in range(1, 101):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-17:
            break
    return min(1.0, max(0.0, 2.0 * total))


def ks_pvalue(statistic: float, n1: float, n2: float) -> float:
    """Asymptotic two-sample KS p-value with effective size n1·n2/(n1+n2) (Stephens' small-sample correction)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    en = math.sqrt(n1 * n2 / (n1 + n2))
    return kolmogorov_sf((en + 0.12 + 0.11 / en) * statistic)


def binom_logpmf(k: int, n: int, p: float) -> float:
    if k < 0 or k > n:
        return -math.inf
    if p in (0.0, 1.0):
        return 0.0 if (k == 0 and p == 0.0) or (k == n and p == 1.0) else -math.inf
    log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_choose + k * math.log(p) + (n - k) * math.log1p(-p)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (n is at most a few hundred thousand here)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, math.fsum(math.exp(binom_logpmf(i, n, p)) for i in range(k + 1)))
