"""The evidence-based verdict for a shadow test or a canary phase, re-evaluated at every poll.

`decide(production, shadow, policy)` compares cumulative counts per variant with always-valid sequential
tests (see `sequential.py`): it stops as soon as the shadow is clearly worse (REJECT) or clearly not worse
within the stated margins (PROMOTE), keeps going (CONTINUE) while neither is established, and at the end of
the allotted time says INCONCLUSIVE (acted on with the policy's default). Too little data is NO_DATA,
never a silent pass or fail. The same call judges a canary: production = old fleet, shadow = new fleet.

Decision zones, per metric (difference d = shadow - production, higher = worse):
- REJECT when the lower end of the metric's confidence sequence at level alpha/m (m = the sequential
  REJECT metrics present: the family-wise false-REJECT bound is alpha) exceeds the metric's HARM threshold
  (default: its margin), so a regression the margins tolerate is not rejected as traffic grows;
- PROMOTE when, on every metric, the upper end at level alpha lies below the margin (intersection-union);
- otherwise CONTINUE, and INCONCLUSIVE when the time is up.
From CloudWatch periods (`VariantSample.periods`) the arms are compared within each period (`periods.py`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.stats.periods import INF, Period, align, excess_rate_levels, mean_ratio_cs, srm, srm_at_least
from functions.stats.sequential import confidence_sequence, log_mixture_lr, mean_difference


class Decision(StrEnum):
    PROMOTE = "PROMOTE"
    REJECT = "REJECT"
    CONTINUE = "CONTINUE"
    INCONCLUSIVE = "INCONCLUSIVE"
    NO_DATA = "NO_DATA"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LatencySummary(_Frozen):
    """Cumulative latency of one variant as log-moments (latencies in microseconds, as ModelLatency).

    `exceed_count` counts requests slower than the policy's `tail_threshold_micros` (e.g. production's p99
    from before the test); when both variants give it, the tail is tested too.
    """

    count: int = Field(ge=0)
    sum_log: float
    sum_log_sq: float = Field(ge=0)
    exceed_count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> LatencySummary:
        if self.exceed_count is not None and self.exceed_count > self.count:
            raise ValueError("exceed_count cannot exceed count")
        return self

    @classmethod
    def from_values(cls, micros: Iterable[float], tail_threshold_micros: float | None = None) -> LatencySummary:
        """From per-request latencies (µs)."""
        return cls.from_histogram(((v, 1) for v in micros), tail_threshold_micros)

    @classmethod
    def from_histogram(
        cls, pairs: Iterable[tuple[float, int]], tail_threshold_micros: float | None = None
    ) -> LatencySummary:
        """From (latency µs, count) pairs: a histogram's bucket values, or CloudWatch `Values`/`Counts`."""
        n, s, ss, exceed = 0, 0.0, 0.0, 0
        for value, k in pairs:
            if not value > 0 or not math.isfinite(value):
                raise ValueError(f"latency must be a positive finite number of microseconds, got {value!r}")
            if k < 0:
                raise ValueError(f"count must be >= 0, got {k}")
            lv = math.log(value)
            n, s, ss = n + k, s + k * lv, ss + k * lv * lv
            if tail_threshold_micros is not None and value > tail_threshold_micros:
                exceed += k
        return cls(count=n, sum_log=s, sum_log_sq=ss, exceed_count=exceed if tail_threshold_micros else None)

    @classmethod
    def from_period_stats(cls, averages: Sequence[float], counts: Sequence[float]) -> LatencySummary:
        """From CloudWatch `ModelLatency` per-period `Average` and `SampleCount` when every period holds at most
        ONE request (then the averages are the per-request values).

        Periods averaging several requests are refused: the log of a period average is biased by the period's
        count (statistics audit §3 #1), so two arms with different counts per period would be compared with a
        bias. Use `VariantSample.from_periods` (per-period Sum / SampleCount, compared within each period).
        """
        if len(averages) != len(counts):
            raise ValueError(f"{len(averages)} averages but {len(counts)} sample counts")
        if any(c > 1 for c in counts):
            raise ValueError(
                "periods average several requests: use VariantSample.from_periods (per-period Sum / SampleCount)"
            )
        return cls.from_values(a for a, c in zip(averages, counts, strict=True) if c > 0)

    def __add__(self, other: LatencySummary) -> LatencySummary:
        both = self.exceed_count is not None and other.exceed_count is not None
        return LatencySummary(
            count=self.count + other.count,
            sum_log=self.sum_log + other.sum_log,
            sum_log_sq=self.sum_log_sq + other.sum_log_sq,
            exceed_count=(self.exceed_count or 0) + (other.exceed_count or 0) if both else None,
        )

    @property
    def mean_log(self) -> float:
        return self.sum_log / self.count

    @property
    def var_log(self) -> float:
        """Sample variance of log-latency (n - 1 denominator)."""
        if self.count < 2:
            return 0.0
        return max(0.0, (self.sum_log_sq - self.sum_log**2 / self.count) / (self.count - 1))


class VariantSample(_Frozen):
    """Cumulative evidence for one variant since the test started.

    From CloudWatch: `requests` = Sum of `Invocations` (or SampleCount of `Invocation5XXErrors`), `errors` =
    Sum of `Invocation5XXErrors`; latency from per-request `ModelLatency` values or a histogram.
    """

    name: str
    requests: int = Field(ge=0)
    errors: int = Field(ge=0)
    latency: LatencySummary | None = None
    # Per-period CloudWatch data (the deployed path): when both arms carry them, the arms are compared period
    # by period (stratified) on errors, the ratio of mean latencies and, with exceedance counts, the tail.
    periods: list[Period] | None = None
    client_errors: int | None = Field(default=None, ge=0)  # Invocation4XXErrors Sum, when read

    @classmethod
    def from_periods(cls, name: str, periods: Sequence[Period]) -> VariantSample:
        """From per-period CloudWatch statistics (see `functions.stats.periods.Period`)."""
        ps = sorted(periods, key=lambda p: p.start)
        client = [p.client_errors for p in ps]
        return cls(
            name=name,
            requests=round(sum(p.requests for p in ps)),
            errors=round(sum(p.errors for p in ps)),
            periods=ps,
            client_errors=round(sum(c for c in client if c is not None)) if any(c is not None for c in client) else None,
        )

    @property
    def latency_requests(self) -> int:
        """Requests with a latency measurement (Σ SampleCount of ModelLatency, or per-request values)."""
        if self.periods is not None:
            return round(sum(p.latency_count for p in self.periods))
        return self.latency.count if self.latency is not None else 0

    @classmethod
    def from_metric_stats(
        cls,
        name: str,
        errors: dict[str, list[float]],
        latency: dict[str, list[float]] | None = None,
        timestamps: Sequence[float] | None = None,
    ) -> VariantSample:
        """From per-period CloudWatch statistics over the test window, as `metric_stats` returns them:
        `Invocation5XXErrors` ["Sum", "SampleCount"] and `ModelLatency` ["Average" or "Sum", "SampleCount"], the
        same periods in the same order for both metrics (and for both arms: periods are aligned by position, or
        by `timestamps` when given). Optional `Invocation4XXErrors` Sum as errors["4XX"], exceedance counts as
        latency["Exceed"] (`TC(threshold:)`). The result carries the periods: the deployed path.
        """
        req, err = errors.get("SampleCount", []), errors.get("Sum", [])
        if len(req) != len(err):
            raise ValueError(f"{len(err)} error sums but {len(req)} sample counts")
        if latency is None or not (latency.get("Average") or latency.get("Sum")):
            lat_n: list[float] = [0.0] * len(req)
            lat_sum: list[float] = [0.0] * len(req)
            exceed = None
        else:
            lat_n = latency.get("SampleCount", [])
            if latency.get("Sum"):
                lat_sum = latency["Sum"]
            else:
                lat_sum = [a * c for a, c in zip(latency["Average"], lat_n, strict=False)]
            if not (len(lat_n) == len(lat_sum) == len(req)):
                raise ValueError(
                    f"{len(lat_sum)} latency averages/sums, {len(lat_n)} latency sample counts and {len(req)} error "
                    "periods: pass the same periods for both metrics"
                )
            exceed = latency.get("Exceed")
        client = errors.get("4XX")
        starts = list(timestamps) if timestamps is not None else [float(i) for i in range(len(req))]
        periods = [
            Period(
                starts[i], req[i], err[i], lat_sum[i], lat_n[i],
                exceed[i] if exceed is not None else None, client[i] if client is not None else None,
            )
            for i in range(len(req))
        ]
        return cls.from_periods(name, periods)

    @model_validator(mode="after")
    def _consistent(self) -> VariantSample:
        if self.errors > self.requests:
            raise ValueError(f"{self.name}: errors ({self.errors}) cannot exceed requests ({self.requests})")
        return self


class VerdictPolicy(_Frozen):
    """Error rates, margins and minimums of the verdict. Defaults are safe: alpha = 5 %."""

    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="family-wise bound for false REJECT and for false PROMOTE")
    min_requests: int = Field(default=100, ge=2, description="per variant before any decision")
    min_latency_samples: int = Field(
        default=30, ge=2, description="latency-measured REQUESTS per variant (Σ SampleCount, not periods)"
    )
    min_periods: int = Field(default=2, ge=2, description="periods with both arms, for the per-period variance")
    # Harm thresholds: REJECT needs the lower confidence bound above them (None = the margin).
    error_harm: float | None = Field(default=None, ge=0, lt=1)
    latency_harm: float | None = Field(default=None, ge=0)
    tail_harm: float | None = Field(default=None, ge=0, lt=1)
    # Mirrored traffic: 4XX the shadow returned on requests production answered above this: REJECT at once
    # (a contract break, not noise); any 4XX/5XX of that kind turns a would-be INCONCLUSIVE / NO_DATA into REJECT.
    max_answered_failures: int = Field(default=0, ge=0)
    srm_alpha: float = Field(default=0.001, gt=0, lt=0.5, description="sample-ratio mismatch test level")
    # Each metric's tau is the spread of the mixing distribution over regressions: the sizes of effect the
    # test is tuned to find fastest (bench/sequential_sim.py: 0.01 = 1 pp of errors, 0.2 = ~20 % latency).
    # error rate: absolute non-inferiority margin on (shadow - production), and the mixture's spread
    error_margin: float = Field(default=0.005, gt=0, lt=1)
    error_tau: float = Field(default=0.01, gt=0)
    # latency: relative margin on the geometric-mean latency (0.10 = shadow up to 10 % slower)
    require_latency: bool = True
    latency_margin: float = Field(default=0.10, gt=0)
    latency_tau: float = Field(default=0.20, gt=0)
    # tail: share of requests above `tail_threshold_micros` (absolute margin on the difference of shares)
    tail_threshold_micros: float | None = Field(default=None, gt=0)
    tail_margin: float = Field(default=0.01, gt=0, lt=1)
    tail_tau: float = Field(default=0.01, gt=0)
    # data quality: refuse to PROMOTE when more than this share of the captured requests is malformed
    max_malformed_fraction: float = Field(default=0.5, ge=0, le=1)
    # ground truth (paired): REJECT when the shadow is significantly less accurate / lower AUC
    paired_alpha: float = Field(default=0.05, gt=0, lt=0.5)
    auc_margin: float = Field(default=0.01, gt=0, lt=1, description="AUC loss tolerated for PROMOTE")
    accuracy_margin: float = Field(default=0.01, gt=0, lt=1, description="accuracy loss tolerated for PROMOTE")
    min_labeled: int = Field(default=50, ge=2, description="labeled pairs before the paired tests decide")
    on_inconclusive: Literal["Promote", "Remove"] = "Remove"


class MetricEvidence(_Frozen):
    metric: Literal["error_rate", "log_latency", "latency_mean", "latency_tail", "paired_auc", "paired_accuracy"]
    decision: Decision
    production_samples: int
    shadow_samples: int
    production_estimate: float
    shadow_estimate: float
    difference: float  # shadow - production (higher = worse)
    ci_low: float  # always-valid (1 - alpha) confidence sequence for the difference
    ci_high: float
    margin: float  # PROMOTE needs ci_high < margin
    harm: float | None = None  # REJECT needs reject_low > harm
    reject_low: float | None = None  # lower end of the sequence at the REJECT level (alpha / m)
    msprt: float | None = None  # mixture likelihood ratio (e-value) at "no difference" (capped at 1e300)
    threshold: float | None = None  # m/alpha: the e-value a REJECT at harm 0 would need
    p_value: float | None = None  # fixed-sample tests (paired, at the end)
    summary: str


class Verdict(_Frozen):
    decision: Decision
    action: Literal["Promote", "Remove"] | None  # what to do now; None while CONTINUE
    final: bool
    alpha: float
    production: str
    shadow: str
    metrics: list[MetricEvidence]
    blocked_by: str | None = None  # why a PROMOTE was withheld (data quality)
    explanation: str


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _pp(x: float) -> str:
    return f"{100 * x:+.2f} pp"


def _zone(low_reject: float, high: float, harm: float, margin: float) -> Decision:
    if low_reject > harm:
        return Decision.REJECT
    if high < margin:
        return Decision.PROMOTE
    return Decision.CONTINUE


def _e(log_e: float) -> float:
    return math.exp(min(max(log_e, -690.0), 690.0))


def _count_metric(
    metric: Literal["error_rate", "latency_tail"],
    rows: list[tuple[float, float, float, float]],
    *,
    alpha: float,
    alpha_reject: float,
    margin: float,
    harm: float,
    prior_mean: float,
) -> MetricEvidence:
    """Excess rate Δ = shadow - production from per-period counts (one stratum when no periods)."""
    promote, reject = excess_rate_levels(rows, (alpha, alpha_reject), prior_mean=prior_mean)
    decision = _zone(reject.low, promote.high, harm, margin)
    label = "error rate" if metric == "error_rate" else "share above tail threshold"
    ratio = promote.ratio
    summary = (
        f"{label} {_pct(promote.rate_b)} vs {_pct(promote.rate_a)} ({_pp(promote.estimate)}, "
        f"CI [{_pp(max(promote.low, -1))}, {_pp(promote.high)}], margin {_pp(margin)}, harm {_pp(harm)}; "
        f"rate ratio CI {ratio.low:.3g}-{ratio.high:.3g})"
    )
    return MetricEvidence(
        metric=metric, decision=decision,
        production_samples=round(sum(r[1] for r in rows)), shadow_samples=round(sum(r[3] for r in rows)),
        production_estimate=promote.rate_a, shadow_estimate=promote.rate_b, difference=promote.estimate,
        ci_low=max(promote.low, -1.0), ci_high=promote.high, margin=margin, harm=harm,
        reject_low=max(reject.low, -1.0), msprt=_e(promote.log_e), threshold=1.0 / alpha_reject, summary=summary,
    )


def _latency_mean(
    pairs: list[tuple[Period, Period]], *, alpha: float, alpha_reject: float, margin: float, harm: float, tau: float
) -> MetricEvidence:
    """Ratio of the arms' arithmetic mean latencies from per-period Sum / SampleCount (stratified)."""
    rows = [(a.latency_sum, a.latency_count, b.latency_sum, b.latency_count) for a, b in pairs]
    promote = mean_ratio_cs(rows, alpha, tau)
    reject = mean_ratio_cs(rows, alpha_reject, tau)
    n_a, n_b = sum(r[1] for r in rows), sum(r[3] for r in rows)
    mean_a = sum(r[0] for r in rows) / n_a if n_a else 0.0
    mean_b = sum(r[2] for r in rows) / n_b if n_b else 0.0
    decision = _zone(reject.low - 1, promote.high - 1, harm, margin)
    summary = (
        f"mean latency x{promote.estimate:.3f} within periods ({mean_b:.0f} vs {mean_a:.0f} us, "
        f"CI x{promote.low:.3f}-x{promote.high:.3g}, margin x{1 + margin:.3f}, harm x{1 + harm:.3f})"
    )
    return MetricEvidence(
        metric="latency_mean", decision=decision, production_samples=round(n_a), shadow_samples=round(n_b),
        production_estimate=mean_a, shadow_estimate=mean_b, difference=promote.estimate - 1,
        ci_low=promote.low - 1, ci_high=promote.high - 1 if promote.high < INF else INF, margin=margin, harm=harm,
        reject_low=reject.low - 1, msprt=_e(promote.log_e), threshold=1.0 / alpha_reject, summary=summary,
    )


def _log_latency(
    lp: LatencySummary, ls: LatencySummary, *, alpha: float, alpha_reject: float, margin: float, harm: float, tau: float
) -> MetricEvidence:
    """Per-request log-latency (values or a histogram): the normal-mixture sequence on the difference of mean
    log-latency (Welch variance, the same for the test and the sequence)."""
    sample = mean_difference(lp.count, lp.mean_log, lp.var_log, ls.count, ls.mean_log, ls.var_log)
    lo, hi = confidence_sequence(sample.difference, sample.variance, tau, alpha)
    lo_r, _ = confidence_sequence(sample.difference, sample.variance, tau, alpha_reject)
    m, h = math.log1p(margin), math.log1p(harm)
    decision = _zone(lo_r, hi, h, m)
    summary = (
        f"latency x{math.exp(sample.difference):.3f} (geometric mean, CI x{math.exp(lo):.3f}-x{math.exp(hi):.3f}, "
        f"margin x{math.exp(m):.3f}, harm x{math.exp(h):.3f})"
    )
    return MetricEvidence(
        metric="log_latency", decision=decision, production_samples=lp.count, shadow_samples=ls.count,
        production_estimate=sample.mean_a, shadow_estimate=sample.mean_b, difference=sample.difference,
        ci_low=lo, ci_high=hi, margin=m, harm=h, reject_low=lo_r,
        msprt=_e(log_mixture_lr(sample.difference, sample.variance, 0.0, tau)), threshold=1.0 / alpha_reject,
        summary=summary,
    )


def sequential_evidence(prod: VariantSample, shadow: VariantSample, policy: VerdictPolicy) -> list[MetricEvidence]:
    """Per-metric sequential evidence (callers normally use `decide`).

    With per-period data on both arms (the deployed path) every metric is stratified by period; otherwise the
    cumulative counts are one stratum (valid when the allocation is constant, e.g. mirrored traffic).
    """
    error_harm = policy.error_margin if policy.error_harm is None else policy.error_harm
    latency_harm = policy.latency_margin if policy.latency_harm is None else policy.latency_harm
    tail_harm = policy.tail_margin if policy.tail_harm is None else policy.tail_harm
    if prod.periods is not None and shadow.periods is not None:
        pairs = align(prod.periods, shadow.periods)
        tail = bool(pairs) and all(a.exceed is not None and b.exceed is not None for a, b in pairs)
        m = 3 if tail else 2
        aR = policy.alpha / m
        out = [
            _count_metric(
                "error_rate", [(a.errors, a.requests, b.errors, b.requests) for a, b in pairs],
                alpha=policy.alpha, alpha_reject=aR, margin=policy.error_margin, harm=error_harm,
                prior_mean=policy.error_tau,
            ),
            _latency_mean(
                pairs, alpha=policy.alpha, alpha_reject=aR, margin=policy.latency_margin, harm=latency_harm,
                tau=policy.latency_tau,
            ),
        ]
        if tail:
            out.append(
                _count_metric(
                    "latency_tail",
                    [(a.exceed or 0.0, a.latency_count, b.exceed or 0.0, b.latency_count) for a, b in pairs],
                    alpha=policy.alpha, alpha_reject=aR, margin=policy.tail_margin, harm=tail_harm,
                    prior_mean=policy.tail_tau,
                )
            )
        return out
    lp, ls = prod.latency, shadow.latency
    has_latency = lp is not None and ls is not None and lp.count >= 2 and ls.count >= 2
    has_tail = has_latency and lp.exceed_count is not None and ls.exceed_count is not None  # type: ignore[union-attr]
    m = 1 + has_latency + has_tail
    aR = policy.alpha / m
    out = [
        _count_metric(
            "error_rate", [(prod.errors, prod.requests, shadow.errors, shadow.requests)],
            alpha=policy.alpha, alpha_reject=aR, margin=policy.error_margin, harm=error_harm,
            prior_mean=policy.error_tau,
        )
    ]
    if has_latency:
        assert lp is not None and ls is not None
        out.append(
            _log_latency(lp, ls, alpha=policy.alpha, alpha_reject=aR, margin=policy.latency_margin,
                         harm=latency_harm, tau=policy.latency_tau)
        )
        if has_tail:
            out.append(
                _count_metric(
                    "latency_tail", [(lp.exceed_count or 0, lp.count, ls.exceed_count or 0, ls.count)],
                    alpha=policy.alpha, alpha_reject=aR, margin=policy.tail_margin, harm=tail_harm,
                    prior_mean=policy.tail_tau,
                )
            )
    return out


def _missing(prod: VariantSample, shadow: VariantSample, policy: VerdictPolicy) -> str | None:
    """The NO_DATA gate counts requests (Σ SampleCount), never periods."""
    for v in (prod, shadow):
        if v.requests < policy.min_requests:
            return f"{v.name} has {v.requests} requests (< {policy.min_requests} needed)"
        if policy.require_latency:
            if v.latency is None and v.periods is None:
                return f"{v.name} has no latency data"
            if v.latency_requests < policy.min_latency_samples:
                return (
                    f"{v.name} has {v.latency_requests} latency-measured requests "
                    f"(< {policy.min_latency_samples} needed)"
                )
    if prod.periods is not None and shadow.periods is not None:
        common = sum(1 for a, b in align(prod.periods, shadow.periods) if a.latency_count > 0 and b.latency_count > 0)
        if policy.require_latency and common < policy.min_periods:
            return f"{common} period(s) with both arms' latency (< {policy.min_periods} needed for a variance)"
    return None


def answered_failures(prod: VariantSample, shadow: VariantSample, *, client_only: bool = False) -> int | None:
    """Mirrored traffic: a lower bound on the shadow's failures (4XX, plus 5XX unless `client_only`) on
    requests production answered.

    The shadow's requests are copies of production's, so in each period the shadow's failures beyond
    production's cannot all be requests production failed too. None without per-period data.
    """
    if prod.periods is None or shadow.periods is None:
        return None
    total = 0.0
    for a, b in align(prod.periods, shadow.periods):
        fa = (a.client_errors or 0.0) + (0.0 if client_only else a.errors)
        fb = (b.client_errors or 0.0) + (0.0 if client_only else b.errors)
        total += max(0.0, fb - fa)
    return round(total)


def _step_periods(old: Sequence[Period], new: Sequence[Period]) -> list[tuple[Period, Period]]:
    """A canary's step as CloudWatch shows it: the periods in which both fleets served, without the first and
    the last of them. Those two hold the step's edges (traffic turned on mid-period, the full shift mid-period,
    or the latest, still partial period), where the share is between two steps' and would fake a mismatch."""
    both = [(a, b) for a, b in align(old, new) if a.requests > 0 and b.requests > 0]
    return both[1:-1]


def sample_ratio(
    prod: VariantSample, shadow: VariantSample, expected_share: float, *, mirrored: bool, alpha: float
) -> str | None:
    """A sample-ratio mismatch, explained, or None. Mirrored: shadow requests ~ Binomial(production, share);
    split (canary): new-fleet requests ~ Binomial(both, share), within the canary step when per-period data
    tell the step apart (`_step_periods`): provisioning (old fleet only) and the full shift (new only) are not
    part of it. `expected_share` is then the canary's capacity share (one step: CANARY, or LINEAR's first)."""
    if not 0 < expected_share < 1:
        return None
    trials = prod.requests if mirrored else prod.requests + shadow.requests
    observed = min(shadow.requests, trials)
    what = "of production's requests" if mirrored else "of all requests"
    if not mirrored and prod.periods is not None and shadow.periods is not None:
        step = _step_periods(prod.periods, shadow.periods)
        observed, trials = sum(b.requests for _, b in step), sum(a.requests + b.requests for a, b in step)
        what = f"of all requests in {len(step)} period(s) of the step"
    mismatch, log_e = srm(observed, trials, expected_share, alpha)
    if not mismatch:
        return None
    share = observed / trials if trials else 0.0
    return (
        f"sample-ratio mismatch: {shadow.name} got {_pct(share)} {what}, configured {_pct(expected_share)} "
        f"(e-value {_e(log_e):.3g} >= {1 / alpha:.0f}): the arms do not see the traffic the test assumes"
    )


def minimum_share_ratio(prod: VariantSample, shadow: VariantSample, minimum_share: float, *, alpha: float) -> str | None:
    """A LINEAR rollout's sample-ratio mismatch, explained, or None: within its steps (`_step_periods`) the new
    fleet must get at least its first step's capacity share of each period's requests (later steps and the edges
    between them lie above it, so no period needs to know its step)."""
    if prod.periods is None or shadow.periods is None or not 0 < minimum_share < 1:
        return None
    step = _step_periods(prod.periods, shadow.periods)
    mismatch, log_e = srm_at_least([(b.requests, a.requests + b.requests) for a, b in step], minimum_share, alpha)
    if not mismatch:
        return None
    observed = sum(b.requests for _, b in step)
    trials = sum(a.requests + b.requests for a, b in step)
    return (
        f"sample-ratio mismatch: {shadow.name} got {_pct(observed / trials if trials else 0.0)} of all requests in "
        f"{len(step)} period(s) of the steps, where each period should give it at least {_pct(minimum_share)} "
        f"(its first step's capacity share; e-value {_e(log_e):.3g} >= {1 / alpha:.0f}): the arms do not see the "
        f"traffic the test assumes"
    )


def decide(
    prod: VariantSample,
    shadow: VariantSample,
    policy: VerdictPolicy | None = None,
    *,
    final: bool = False,
    paired: list[MetricEvidence] | None = None,
    malformed_fraction: float | None = None,
    mirrored: bool = False,
    expected_share: float | None = None,
    minimum_share: float | None = None,
) -> Verdict:
    """The verdict at one poll, from cumulative counts (or per-period data) since the test started.

    `final=True` at the end of the allotted time: an undecided test becomes INCONCLUSIVE; NO_DATA at the end
    is acted on as Remove, whatever `on_inconclusive` says (no evidence never promotes).
    `paired`: evidence from ground-truth pairing (`functions.stats.paired.PairedReport.evidence()`), fixed-sample
    tests, to be passed once, at the end; any REJECT there rejects. `malformed_fraction`: from
    `functions.stats.data_quality.malformed_fraction`; above `policy.max_malformed_fraction` a PROMOTE is
    withheld (CONTINUE, or INCONCLUSIVE when final). `mirrored=True` (shadow traffic): a shadow that failed
    requests production answered is REJECTED. `expected_share`: the sampling (mirrored) or capacity share
    (canary) the configuration promises; a sample-ratio mismatch withholds PROMOTE. `minimum_share` (LINEAR, one
    share per step): the new fleet's share of each period's requests must be at least this (its first step's).
    """
    policy = policy or VerdictPolicy()
    head = f"{shadow.name} vs {prod.name} after {shadow.requests}/{prod.requests} requests"
    refused = answered_failures(prod, shadow, client_only=True) if mirrored else None
    answered = answered_failures(prod, shadow) if mirrored else None

    def failed_answered(count: int, what: str, metrics: list[MetricEvidence]) -> Verdict:
        return Verdict(
            decision=Decision.REJECT, action="Remove", final=final, alpha=policy.alpha, production=prod.name,
            shadow=shadow.name, metrics=metrics,
            explanation=f"REJECT: {head}: the shadow failed at least {count} request(s) ({what}) that production answered",
        )

    if refused is not None and refused > policy.max_answered_failures:
        return failed_answered(refused, "4XX", [])
    missing = _missing(prod, shadow, policy)
    if missing is not None and final and answered:
        return failed_answered(answered, "4XX/5XX; too little traffic for a verdict otherwise", [])
    if missing is not None:
        return Verdict(
            decision=Decision.NO_DATA,
            action="Remove" if final else None,
            final=final,
            alpha=policy.alpha,
            production=prod.name,
            shadow=shadow.name,
            metrics=[],
            explanation=f"NO_DATA: {missing}" + ("; no evidence: Remove (never a silent promotion)" if final else ""),
        )
    metrics = sequential_evidence(prod, shadow, policy) + list(paired or [])
    blocked = None
    if malformed_fraction is not None and malformed_fraction > policy.max_malformed_fraction:
        blocked = (
            f"{_pct(malformed_fraction)} of captured requests are malformed "
            f"(> {_pct(policy.max_malformed_fraction)}): the test says little about real traffic"
        )
    if expected_share is not None:
        mismatch = sample_ratio(prod, shadow, expected_share, mirrored=mirrored, alpha=policy.srm_alpha)
        if mismatch is not None:
            blocked = mismatch if blocked is None else blocked + "; " + mismatch
    if minimum_share is not None and not mirrored:
        mismatch = minimum_share_ratio(prod, shadow, minimum_share, alpha=policy.srm_alpha)
        if mismatch is not None:
            blocked = mismatch if blocked is None else blocked + "; " + mismatch
    rejected = [m for m in metrics if m.decision is Decision.REJECT]
    all_promote = all(m.decision is Decision.PROMOTE for m in metrics)
    if rejected:
        decision, action = Decision.REJECT, "Remove"
        reason = "; ".join(m.summary for m in rejected)
    elif all_promote and blocked is None:
        decision, action = Decision.PROMOTE, "Promote"
        reason = "; ".join(m.summary for m in metrics)
    elif final and answered:
        return failed_answered(answered, "4XX/5XX; the statistics were inconclusive", metrics)
    elif final:
        decision, action = Decision.INCONCLUSIVE, policy.on_inconclusive
        reason = (blocked + "; " if blocked else "") + "; ".join(m.summary for m in metrics)
        reason += f"; default action {policy.on_inconclusive}"
    else:
        decision, action = Decision.CONTINUE, None
        reason = (blocked + "; " if blocked else "") + "; ".join(m.summary for m in metrics)
    return Verdict(
        decision=decision,
        action=action,  # type: ignore[arg-type]
        final=final,
        alpha=policy.alpha,
        production=prod.name,
        shadow=shadow.name,
        metrics=metrics,
        blocked_by=blocked,
        explanation=(
            f"{decision.value}: {head}: {reason} (alpha={policy.alpha:g} family-wise for REJECT and for PROMOTE, "
            f"always-valid)"
        ),
    )
