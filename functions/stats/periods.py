"""Anytime-valid comparisons built from what CloudWatch gives: per-period Sum / SampleCount of each arm.

The deployed verdict never sees a request: it sees, per metric period (60 s on AWS), how many requests each
arm served, how many failed, the Sum of their latencies and, with the extended statistic `TC(threshold:)`,
how many were slower than a threshold. Everything here compares the two arms WITHIN each period and then
combines the periods, so a traffic step (canary share, linear step, a sampled shadow) or a drift common to
both arms (a busy hour, an error burst upstream) cancels instead of biasing the comparison.

- **Counts** (errors, requests above the tail threshold): conditionally on a period's total events
  E_t = k_a + k_b, the shadow's share is Binomial(E_t, π_t) with π_t = rho n_b / (n_a + rho n_b), where rho is the
  ratio of the arms' rates (Poisson model; Lindon & Malek 2022, "Anytime-valid inference for multinomial count
  data"). Mixing the likelihood over a fixed discrete prior on log rho gives a test martingale for every rho0 at
  once, so the confidence sequence for rho is exact at any count: no plug-in variance, no normal
  approximation, zero events mean "no information" rather than "no variance".
- **Rates of one arm**: Robbins' beta mixture for a Bernoulli sequence (an exact test martingale), giving a
  confidence sequence for one arm's error rate or exceedance share at any n.
- **Mean latency**: the ratio R = μ_b / μ_a of the arms' ARITHMETIC means, from per-period Sum / SampleCount.
  Per period D_t(R0) = h_t (x̄_b,t - R0 x̄_a,t) has mean zero under R = R0 whatever the counts (no Jensen bias,
  unlike log of per-period averages), and h_t = n_a n_b / (n_a + n_b) / m_t (m_t = production's mean latency
  before period t: predictable) weights periods by their information. The self-normalized normal mixture
  exp(λ ΣD - λ² ΣD²/2) (de la Peña 1999) is a supermartingale for conditionally symmetric increments; for
  skewed latencies it is asymptotically valid (Waudby-Smith et al. 2024) and `bench/deployed_sim.py`
  measures it. Mirrored shadow traffic makes x̄_a,t and x̄_b,t positively correlated: D_t is then a PAIRED
  per-period difference and its variance shrinks accordingly.
- **Sample-ratio mismatch**: the same beta mixture on the arms' request counts against the share the
  configuration promises (mirrored: shadow = production x sampling; canary: the new fleet's capacity share).

Standard library only (runs in the Lambda).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

INF = math.inf
_THETA_MAX = 12.0  # |log rho| searched; beyond it a bound is reported as infinite


class Period(NamedTuple):
    """One CloudWatch period of one arm. `exceed` = requests slower than the tail threshold (None: not read);
    `client_errors` = Invocation4XXErrors Sum (None: not read)."""

    start: float  # period start, epoch seconds (aligns the arms)
    requests: float
    errors: float
    latency_sum: float = 0.0  # ModelLatency Sum (µs)
    latency_count: float = 0.0  # ModelLatency SampleCount
    exceed: float | None = None
    client_errors: float | None = None


class Bounds(NamedTuple):
    low: float
    high: float
    estimate: float
    log_e: float  # log e-value (mixture likelihood ratio) against "no difference" (rho = 1, R = 1) or p0


def align(a: Iterable[Period], b: Iterable[Period]) -> list[tuple[Period, Period]]:
    """Periods present in both arms, in time order (a period one arm did not report carries no comparison)."""
    by_start = {p.start: p for p in b}
    return [(p, by_start[p.start]) for p in sorted(a, key=lambda p: p.start) if p.start in by_start]


# ---- one arm's rate: Robbins' beta mixture ---------------------------------------------------------------


def _lbeta(x: float, y: float) -> float:
    return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)


def _log_beta_mixture(k: float, n: float, p0: float, a: float, b: float) -> float:
    if p0 <= 0.0:
        return INF if k > 0 else _lbeta(a + k, b + n - k) - _lbeta(a, b)
    if p0 >= 1.0:
        return INF if k < n else _lbeta(a + k, b + n - k) - _lbeta(a, b)
    return _lbeta(a + k, b + n - k) - _lbeta(a, b) - k * math.log(p0) - (n - k) * math.log1p(-p0)


def proportion_cs(k: float, n: float, alpha: float, prior_mean: float = 0.01, prior_size: float = 50.0) -> Bounds:
    """(1 - alpha) confidence sequence for a Bernoulli rate from k events in n trials, exact at every n.

    The Beta(prior_mean·prior_size, (1 - prior_mean)·prior_size) mixture is tightest for rates near
    `prior_mean` (errors: ~1 %); any prior gives a valid sequence.
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError("need 0 <= k <= n")
    a, b = prior_mean * prior_size, (1 - prior_mean) * prior_size
    thr = math.log(1 / alpha)
    est = k / n if n else 0.0

    def f(p: float) -> float:
        return _log_beta_mixture(k, n, p, a, b) - thr

    def solve(lo: float, hi: float, rising: bool) -> float:
        for _ in range(45):
            mid = 0.5 * (lo + hi)
            if (f(mid) > 0) == rising:
                hi = mid
            else:
                lo = mid
        return lo if rising else hi

    high = 1.0 if f(1.0 - 1e-12) <= 0 else solve(est, 1.0 - 1e-12, True)
    low = 0.0 if k == 0 or f(1e-15) <= 0 else solve(1e-15, est, False)
    return Bounds(low, high, est, _log_beta_mixture(k, n, prior_mean, a, b))


def srm(observed: float, trials: float, expected_share: float, alpha: float = 0.001) -> tuple[bool, float]:
    """Sequential sample-ratio-mismatch test: is `observed` of `trials` consistent with `expected_share`?

    Beta(1, 1) mixture likelihood ratio against the promised share (an exact test martingale): (mismatch, log
    e-value). Mirrored shadow: observed = shadow requests, trials = production requests, share = sampling.
    Canary: observed = new-fleet requests, trials = both fleets', share = the new fleet's capacity share.
    """
    if not 0 < expected_share < 1:
        raise ValueError("expected_share must lie in (0, 1)")
    observed, trials = round(observed), round(trials)
    if trials <= 0:
        return False, 0.0
    observed = min(max(observed, 0), trials)
    log_e = _log_beta_mixture(observed, trials, expected_share, 1.0, 1.0)
    return log_e >= math.log(1 / alpha), log_e


def srm_at_least(
    counts: Iterable[tuple[float, float]], minimum_share: float, alpha: float = 0.001
) -> tuple[bool, float]:
    """Sequential test that, in every period, `observed` of `trials` is consistent with a share >= minimum_share
    (a LINEAR rollout: one share per step, all at least the first step's).

    Per period a Beta(1, 1) mixture over the share, divided by the likelihood maximized over the null shares
    [minimum_share, 1] (universal inference): under any null share its expectation is at most 1, so the product
    over periods is a test supermartingale (anytime-valid). (mismatch, log e-value).
    """
    if not 0 < minimum_share < 1:
        raise ValueError("minimum_share must lie in (0, 1)")
    log_e = 0.0
    for observed, trials in counts:
        n = round(trials)
        if n <= 0:
            continue
        k = min(max(round(observed), 0), n)
        p0 = max(k / n, minimum_share)
        null = (k * math.log(p0) if k else 0.0) + ((n - k) * math.log1p(-p0) if n - k else 0.0)
        log_e += _lbeta(1 + k, 1 + n - k) - _lbeta(1, 1) - null
    return log_e >= math.log(1 / alpha), log_e


# ---- ratio of two arms' event rates, stratified by period ------------------------------------------------


def _softplus(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


class _Strata:
    """Σ over periods of the conditional binomial log-likelihood in θ = log rho, grouped by log(n_b / n_a)."""

    def __init__(self, rows: Iterable[tuple[float, float, float, float]]) -> None:
        # Periods whose log(n_b / n_a) agree to 0.01 share one term, at their event-weighted mean offset (an
        # error of at most 0.5 % in the share ratio, below the Poisson model's): cost ~ distinct shares.
        groups: dict[int, list[float]] = {}
        for k_a, n_a, k_b, n_b in rows:
            events = k_a + k_b
            if events <= 0 or n_a <= 0 or n_b <= 0:
                continue
            c = math.log(n_b / n_a)
            g = groups.setdefault(round(c / 0.01), [0.0, 0.0, 0.0])
            g[0] += k_b
            g[1] += events
            g[2] += events * c
        self.groups = [(cw / e, kb, e) for kb, e, cw in groups.values()]
        self.events = sum(e for _, _, e in self.groups)

    def loglik(self, theta: float) -> float:
        return sum(kb * (theta + c) - e * _softplus(theta + c) for c, kb, e in self.groups)

    def mle(self) -> float:
        """Maximum of the (concave) log-likelihood in θ, by safeguarded Newton; ±_THETA_MAX at the edges."""
        kb = sum(g[1] for g in self.groups)
        if kb <= 0:
            return -_THETA_MAX
        if kb >= self.events:
            return _THETA_MAX
        lo, hi, theta = -_THETA_MAX, _THETA_MAX, 0.0
        for _ in range(100):
            grad = hess = 0.0
            for c, k, e in self.groups:
                x = theta + c
                p = 1 / (1 + math.exp(-x)) if x > -700 else 0.0
                grad += k - e * p
                hess += e * p * (1 - p)
            if grad > 0:
                lo = theta
            else:
                hi = theta
            step = grad / hess if hess > 0 else 0.0
            nxt = theta + step
            if not lo < nxt < hi or hess == 0:
                nxt = 0.5 * (lo + hi)
            if abs(nxt - theta) < 1e-10:
                return nxt
            theta = nxt
        return theta


_PRIOR_GRID = [j / 4 for j in range(-24, 25)]  # log rho from -6 to 6 (a discrete prior is exact)


def ratio_cs(rows: Iterable[tuple[float, float, float, float]], alpha: float, tau: float = 1.0) -> Bounds:
    """(1 - alpha) confidence sequence for rho = rate_b / rate_a from per-period (k_a, n_a, k_b, n_b).

    Mixture: a discrete N(0, tau²) prior on log rho (a fixed prior, so the mixture over the alternative divided
    by the likelihood at any rho0 is a test martingale under rho0). Returns bounds on rho (0 / inf when the data
    cannot exclude them) and the log e-value at rho = 1.
    """
    return ratio_cs_levels(rows, (alpha,), tau)[0]


def ratio_cs_levels(
    rows: Iterable[tuple[float, float, float, float]], alphas: Sequence[float], tau: float = 1.0
) -> list[Bounds]:
    """`ratio_cs` at several levels from one pass over the data (the mixture does not depend on alpha)."""
    strata = _Strata(rows)
    if strata.events == 0:
        return [Bounds(0.0, INF, 1.0, 0.0) for _ in alphas]
    logw = [-(t * t) / (2 * tau * tau) for t in _PRIOR_GRID]
    top = max(logw)
    norm = top + math.log(sum(math.exp(w - top) for w in logw))
    terms = [w - norm + strata.loglik(t) for w, t in zip(logw, _PRIOR_GRID, strict=True)]
    m = max(terms)
    log_mix = m + math.log(sum(math.exp(x - m) for x in terms))
    mle = strata.mle()
    at_mle = strata.loglik(mle)
    log_e = log_mix - strata.loglik(0.0)
    est = math.exp(mle) if abs(mle) < _THETA_MAX - 1e-6 else (0.0 if mle < 0 else INF)
    out = []
    for alpha in alphas:
        thr = log_mix - math.log(1 / alpha)  # θ0 is in the CS iff loglik(θ0) > thr

        def edge(inside: float, outside: float, f_in: float, thr: float = thr) -> float:
            """Root of loglik = thr between inside (above) and outside, by the Illinois false-position method."""
            f_out = strata.loglik(outside) - thr
            if f_out > 0:
                return outside
            f_in -= thr
            side = 0
            for _ in range(60):
                x = outside - f_out * (outside - inside) / (f_out - f_in)
                fx = strata.loglik(x) - thr
                if abs(fx) < 1e-9 or abs(outside - inside) < 1e-9:
                    return x
                if fx > 0:
                    inside, f_in = x, fx
                    if side == 1:
                        f_out /= 2
                    side = 1
                else:
                    outside, f_out = x, fx
                    if side == -1:
                        f_in /= 2
                    side = -1
            return 0.5 * (inside + outside)

        if at_mle <= thr:  # numerically degenerate: report the point
            low_t = high_t = mle
        else:
            low_t, high_t = edge(mle, -_THETA_MAX, at_mle), edge(mle, _THETA_MAX, at_mle)
        low = 0.0 if low_t <= -_THETA_MAX else math.exp(low_t)
        high = INF if high_t >= _THETA_MAX else math.exp(high_t)
        out.append(Bounds(low, high, est, log_e))
    return out


def _excess(q: float, rho: float) -> float:
    if rho == INF:
        return q
    if rho <= 0:
        return 0.0 if q == 0 else -INF
    return q * (1 - 1 / rho)


class ExcessRate(NamedTuple):
    """Bounds on Δ = rate_b - rate_a (the shadow's excess events per shadow request)."""

    low: float
    high: float
    estimate: float
    rate_a: float
    rate_b: float
    ratio: Bounds
    log_e: float


def excess_rate(
    pairs: Sequence[tuple[float, float, float, float]], alpha: float, *, tau: float = 1.0, prior_mean: float = 0.01
) -> ExcessRate:
    """Simultaneous (1 - alpha) bounds on the excess rate Δ = q_b (1 - 1/rho), from the ratio's sequence
    (alpha/2, stratified by period) and the shadow arm's own rate q_b (alpha/2, beta mixture)."""
    return excess_rate_levels(pairs, (alpha,), tau=tau, prior_mean=prior_mean)[0]


def excess_rate_levels(
    pairs: Sequence[tuple[float, float, float, float]], alphas: Sequence[float], *, tau: float = 1.0,
    prior_mean: float = 0.01,
) -> list[ExcessRate]:
    """`excess_rate` at several levels from one pass."""
    ratios = ratio_cs_levels(pairs, [a / 2 for a in alphas], tau)
    ka = sum(r[0] for r in pairs)
    na = sum(r[1] for r in pairs)
    kb = sum(r[2] for r in pairs)
    nb = sum(r[3] for r in pairs)
    rate_a, rate_b = (ka / na if na else 0.0), (kb / nb if nb else 0.0)
    out = []
    for alpha, ratio in zip(alphas, ratios, strict=True):
        own = proportion_cs(kb, nb, alpha / 2, prior_mean=prior_mean)
        # Δ = q (1 - 1/rho) rises with rho; in q it rises when rho > 1 and falls when rho < 1: extremes of the box
        high = _excess(own.high if ratio.high >= 1 else own.low, ratio.high)
        low = _excess(own.low if ratio.low >= 1 else own.high, ratio.low)
        out.append(ExcessRate(low, high, rate_b - rate_a, rate_a, rate_b, ratio, ratio.log_e))
    return out


# ---- ratio of two arms' arithmetic mean latencies --------------------------------------------------------


class _MeanSums(NamedTuple):
    u: float  # Σ u_t,  u_t = sqrt(c_t) x̄_b,t / m_t
    w: float  # Σ w_t,  w_t = sqrt(c_t) x̄_a,t / m_t
    quu: float
    quw: float
    qww: float
    periods: int
    c_mean: float


def _mean_sums(rows: Iterable[tuple[float, float, float, float]]) -> _MeanSums:
    u = w = quu = quw = qww = csum = 0.0
    periods = 0
    seen_sum = seen_n = 0.0
    for s_a, n_a, s_b, n_b in rows:
        if n_a <= 0 or n_b <= 0:
            continue
        xa, xb = s_a / n_a, s_b / n_b
        scale = seen_sum / seen_n if seen_n > 0 else 0.5 * (xa + xb)  # predictable after the first period
        if scale <= 0:
            scale = 1.0
        c = n_a * n_b / (n_a + n_b)
        r = math.sqrt(c) / scale
        ub, wa = r * xb, r * xa
        u, w = u + ub, w + wa
        quu, quw, qww = quu + ub * ub, quw + ub * wa, qww + wa * wa
        csum += c
        periods += 1
        seen_sum, seen_n = seen_sum + s_a, seen_n + n_a
    return _MeanSums(u, w, quu, quw, qww, periods, csum / periods if periods else 0.0)


def _log_bf_t(s: _MeanSums, r0: float, g: float) -> float:
    """log Bayes factor of the one-sample t-test (normal prior of variance g on the standardized effect, right
    Haar prior on the scale) on Y_t = u_t - r0 w_t: a test martingale under H0 for Gaussian Y_t (Pérez-Ortiz,
    Lardy, de Heide & Grünwald 2024; Lai 1976)."""
    p = s.periods
    if p < 2:
        return 0.0
    sy = s.u - r0 * s.w
    syy = s.quu - 2 * r0 * s.quw + r0 * r0 * s.qww
    ss = max(syy - sy * sy / p, 1e-300 * max(syy, 1.0))
    nu = p - 1
    t2 = sy * sy / p / (ss / nu)
    return -0.5 * math.log1p(p * g) + (nu + 1) / 2 * (math.log1p(t2 / nu) - math.log1p(t2 / (nu * (1 + p * g))))


def mean_ratio_cs(rows: Iterable[tuple[float, float, float, float]], alpha: float, tau: float = 0.1,
                  cv2: float = 0.5) -> Bounds:
    """(1 - alpha) confidence sequence for R = mean_b / mean_a from per-period (Sum_a, n_a, Sum_b, n_b).

    Per period Y_t(R0) = sqrt(c_t) (x̄_b,t - R0 x̄_a,t) / m_t (c_t = n_a n_b / (n_a + n_b), the information of
    the period's difference; m_t production's mean before t) has mean zero under R = R0 whatever the counts,
    and about equal variance across periods: R0 is kept while the sequential t-test on the Y_t does not reject.
    The prior on the standardized effect is tuned to a relative effect `tau` at the periods' average c, with
    `cv2` a nominal squared coefficient of variation of one latency (only power depends on it).
    The set is the connected interval around the estimate; bounds are searched in [1/50, 50].
    """
    s = _mean_sums(rows)
    if s.periods < 2 or s.w <= 0:
        return Bounds(0.0, INF, 1.0, 0.0)
    g = min(max(tau * tau * s.c_mean / cv2, 1.0), 1e6)
    est = s.u / s.w
    thr = math.log(1 / alpha)

    def f(x: float) -> float:
        return _log_bf_t(s, x, g)

    def edge(inside: float, outside: float) -> float:
        # scan geometrically outward for the first point beyond the boundary, then bisect
        step = 1.01 if outside > inside else 1 / 1.01
        prev, x = inside, inside * step
        while (x < outside) if step > 1 else (x > outside):
            if f(x) >= thr:
                lo_, hi_ = prev, x
                for _ in range(40):
                    mid = math.sqrt(lo_ * hi_)
                    if f(mid) >= thr:
                        hi_ = mid
                    else:
                        lo_ = mid
                return math.sqrt(lo_ * hi_)
            prev, x = x, x * step
        return INF if step > 1 else 0.0

    return Bounds(edge(est, 1 / 50.0), edge(est, 50.0), est, f(1.0))
