"""Plan a shadow test or a canary before it starts: can the configured duration decide at this traffic?

From production's traffic and latency before the test (requests per second, error rate, p50/p99), the
sampling or canary share, the metric period and the policy, `plan` computes for an EQUAL model (the usual
case, and the one that must end in PROMOTE) the minutes each metric needs before its confidence sequence can
lie inside its margin, and an approximate probability that the test is still undecided at the end
(P(inconclusive)). The sequences are the verdict's own (`periods.py`), evaluated on the expected path:

- error rate / tail: `excess_rate` on the expected counts (errors = rate x requests) at each period;
- mean latency: the sequential t-test's half-width for P periods of information c each, with the per-request
  squared coefficient of variation from production's p99/p50 (lognormal), or 0.5 when unknown.

P(inconclusive) treats each metric's estimate as normal around the truth with its fixed-sample standard error
and multiplies the metrics' chances to be inside their margins at the end: an approximation that
`bench/deployed_sim.py` checks against simulation (docs/statistics.md). Standard library only.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, field_validator

from functions.stats.distributions import normal_cdf
from functions.stats.periods import excess_rate
from functions.stats.verdict import VerdictPolicy


class MetricPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    minutes_to_promote: float | None  # None: not within the configured duration
    # Of the confidence sequence on the expected path (same units as the margin); None when it never narrows (no
    # data): the plan travels as JSON in $.shadow.plan, where an infinite float would come back as null.
    half_width_at_end: float | None

    @field_validator("half_width_at_end", mode="before")
    @classmethod
    def _infinite_is_none(cls, v: float | None) -> float | None:
        return None if v is None or not math.isfinite(v) else v
    margin: float
    p_inside_at_end: float


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    production_rps: float
    candidate_rps: float
    duration_seconds: int
    period_seconds: int
    metrics: list[MetricPlan]
    minutes_to_decision: float | None  # an equal model's expected PROMOTE; None: beyond the duration
    p_inconclusive: float
    decidable: bool  # an equal model is expected to be PROMOTED within the duration
    explanation: str


def lognormal_cv2(p50: float | None, p99: float | None) -> float:
    """Squared coefficient of variation of one latency from p50 and p99 (lognormal), 0.5 when unknown."""
    if not p50 or not p99 or p99 <= p50:
        return 0.5
    sigma = math.log(p99 / p50) / 2.3263478740408408
    return min(math.expm1(sigma * sigma), 50.0)


def _count_half_width(rate: float, n_a: float, n_b: float, alpha: float, prior: float) -> tuple[float, float]:
    """(upper end of the excess-rate sequence on the expected counts, fixed-sample standard error)."""
    ka, kb = round(rate * n_a), round(rate * n_b)
    cs = excess_rate([(ka, round(n_a), kb, round(n_b))], alpha, prior_mean=prior)
    se = math.sqrt(max(rate * (1 - rate), 1e-9) * (1 / max(n_a, 1) + 1 / max(n_b, 1)))
    return cs.high, se


def _latency_half_width(periods: int, c: float, cv2: float, alpha: float, tau: float) -> tuple[float, float]:
    """Half-width of the mean-ratio sequence after `periods` periods of information `c` (relative units)."""
    if periods < 2 or c <= 0:
        return math.inf, math.inf
    g = min(max(tau * tau * c / cv2, 1.0), 1e6)
    thr = math.log(1 / alpha)
    nu = periods - 1

    def log_bf(t2: float) -> float:
        return -0.5 * math.log1p(periods * g) + (nu + 1) / 2 * (
            math.log1p(t2 / nu) - math.log1p(t2 / (nu * (1 + periods * g)))
        )

    if log_bf(1e12) < thr:
        return math.inf, math.sqrt(cv2 / (periods * c))
    lo, hi = 0.0, 1e12
    for _ in range(200):
        mid = math.sqrt(lo * hi) if lo > 0 else hi / 1e6
        if log_bf(mid) >= thr:
            hi = mid
        else:
            lo = mid
        if hi / max(lo, 1e-300) < 1.0001:
            break
    t2 = hi
    # t² = P c h² / cv2 for the relative half-width h
    return math.sqrt(t2 * cv2 / (periods * c)), math.sqrt(cv2 / (periods * c))


def plan(
    *,
    production_rps: float,
    candidate_rps: float,
    duration_seconds: int,
    period_seconds: int,
    policy: VerdictPolicy | None = None,
    error_rate: float = 0.005,
    latency_cv2: float = 0.5,
    tail: bool = False,
) -> Plan:
    """The expected course of a test of an EQUAL model (see the module docstring)."""
    policy = policy or VerdictPolicy()
    steps = max(duration_seconds // period_seconds, 0)
    rate = min(max(error_rate, 1e-5), 0.5)
    metrics: list[MetricPlan] = []

    def count_metric(name: str, base: float, margin: float, prior: float) -> None:
        first = None
        high = se = math.inf
        for k in range(1, steps + 1):
            n_a, n_b = production_rps * period_seconds * k, candidate_rps * period_seconds * k
            if n_a < policy.min_requests or n_b < policy.min_requests:
                continue
            high, se = _count_half_width(base, n_a, n_b, policy.alpha, prior)
            if first is None and high < margin:
                first = k * period_seconds / 60
        inside = normal_cdf((margin - high) / se) if math.isfinite(high) and se > 0 else 0.0
        metrics.append(MetricPlan(metric=name, minutes_to_promote=first, half_width_at_end=high, margin=margin,
                                  p_inside_at_end=1.0 if first is not None and high < margin / 2 else min(inside, 1.0)))

    count_metric("error_rate", rate, policy.error_margin, policy.error_tau)
    if policy.require_latency:
        n_a, n_b = production_rps * period_seconds, candidate_rps * period_seconds
        c = n_a * n_b / (n_a + n_b) if n_a + n_b > 0 else 0.0
        first = None
        h = se = math.inf
        for k in range(2, steps + 1):
            h, se = _latency_half_width(k, c, latency_cv2, policy.alpha, policy.latency_tau)
            if first is None and h < policy.latency_margin:
                first = k * period_seconds / 60
        inside = normal_cdf((policy.latency_margin - h) / se) if math.isfinite(h) else 0.0
        metrics.append(MetricPlan(metric="latency_mean", minutes_to_promote=first, half_width_at_end=h,
                                  margin=policy.latency_margin,
                                  p_inside_at_end=1.0 if first is not None and h < policy.latency_margin / 2 else inside))
    if tail:
        count_metric("latency_tail", 0.01, policy.tail_margin, policy.tail_tau)
    times = [m.minutes_to_promote for m in metrics]
    decision = None if any(t is None for t in times) else max(t for t in times if t is not None)
    p_all = 1.0
    for m in metrics:
        p_all *= m.p_inside_at_end
    p_inc = 1.0 - p_all
    decidable = decision is not None
    minutes = duration_seconds / 60
    if decidable:
        explanation = (
            f"an equal model is expected to be PROMOTED after about {decision:.0f} of {minutes:.0f} min "
            f"(P(inconclusive) ≈ {100 * p_inc:.0f} %) at {production_rps:.3g} req/s production, "
            f"{candidate_rps:.3g} req/s to the candidate"
        )
    else:
        slow = [m for m in metrics if m.minutes_to_promote is None]
        detail = "; ".join(
            f"{m.metric}: confidence half-width "
            f"{'unbounded' if m.half_width_at_end is None else format(m.half_width_at_end, '.3g')} at the end "
            f"vs margin {m.margin:.3g}"
            for m in slow
        )
        explanation = (
            f"WARNING: this test cannot decide: at {production_rps:.3g} req/s production and {candidate_rps:.3g} "
            f"req/s to the candidate, {minutes:.0f} min of {period_seconds}-s periods are too few for "
            f"{', '.join(m.metric for m in slow)} ({detail}); it will end INCONCLUSIVE "
            f"(P ≈ {100 * p_inc:.0f} %) and take the default action {policy.on_inconclusive}. Lengthen the test, "
            f"raise the sampling / canary share, or widen the margins."
        )
    return Plan(
        production_rps=production_rps, candidate_rps=candidate_rps, duration_seconds=duration_seconds,
        period_seconds=period_seconds, metrics=metrics, minutes_to_decision=decision, p_inconclusive=p_inc,
        decidable=decidable, explanation=explanation,
    )


def canary_refusal(
    strategy: str, *, wait_interval_seconds: int, metric_period_seconds: int, share_percent: int,
    policy: VerdictPolicy | None = None,
) -> str | None:
    """Why a CANARY / LINEAR bake cannot give the canary verdict a decision, with the arithmetic, or None.

    The verdict compares the fleets within each metric period and needs `policy.min_periods` periods in which
    both fleets served (a variance across periods): a bake of W seconds spans at least floor(W / period) of them
    (more when it starts mid-period). Below that the verdict is NO_DATA at every poll of the step, whatever the
    traffic, so a regression on the new fleet could never be rolled back by it. Traffic is not known at deploy
    time: the requests the gate needs are stated as a rate, not refused.
    """
    if strategy not in ("CANARY", "LINEAR"):
        return None
    policy = policy or VerdictPolicy()
    period, wait = max(metric_period_seconds, 1), wait_interval_seconds
    spans = wait // period
    if spans >= policy.min_periods:
        return None
    share = min(max(share_percent, 1), 100) / 100
    rps = policy.min_requests / (min(share, 1 - share) * max(wait, 1)) if share < 1 else math.inf
    return (
        f"the canary verdict (CanaryVerdictMethod=msprt) cannot decide this {strategy} deployment: a {wait}-s bake "
        f"(WaitIntervalSeconds) of {period}-s metric periods (MetricPeriodSeconds) spans {spans} period(s) with "
        f"both fleets serving, and the verdict needs {policy.min_periods} (it compares the fleets within each "
        f"period and needs a variance across periods), so it would say NO_DATA at every poll and could never roll "
        f"a regression back. Set WaitIntervalSeconds >= {policy.min_periods * period} s, or MetricPeriodSeconds <= "
        f"{wait // policy.min_periods if wait >= policy.min_periods else 1} s (10 or 30 with high-resolution "
        f"metrics), or CanaryVerdictMethod=alarms-only. (Each fleet also needs {policy.min_requests} requests "
        f"within the bake: about {rps:.2g} req/s of production traffic at a {share_percent} % step.)"
    )
