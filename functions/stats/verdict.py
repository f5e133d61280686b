"""The evidence-based verdict for a shadow test or a canary phase, re-evaluated at every poll.

`decide(production, shadow, policy)` compares cumulative counts per variant with always-valid sequential
tests (see `sequential.py`): it stops as soon as the shadow is clearly worse (REJECT) or clearly not worse
within the stated margins (PROMOTE), keeps going (CONTINUE) while neither is established, and at the end of
the allotted time says INCONCLUSIVE (acted on with the policy's default). Too little data is NO_DATA,
never a silent pass or fail. The same call judges a canary: production = old fleet, shadow = new fleet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.stats.sequential import (
    TwoSample,
    bernoulli_difference,
    judge_higher_is_worse,
    mean_difference,
)


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
        """From CloudWatch `ModelLatency` per-period `Average` and `SampleCount` (same periods, same order).

        Periods holding one request give the exact per-request values. A period average over several requests
        hides their spread, so then each period counts as ONE observation of its average: a test on
        per-period means, with fewer samples but an honest variance (use short periods: 1 s locally, 60 s on
        AWS). No tail counts: CloudWatch cannot say how many requests exceeded a threshold.
        """
        if len(averages) != len(counts):
            raise ValueError(f"{len(averages)} averages but {len(counts)} sample counts")
        if all(c == 1 for c in counts):
            return cls.from_values(averages)
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

    @classmethod
    def from_metric_stats(
        cls,
        name: str,
        errors: dict[str, list[float]],
        latency: dict[str, list[float]] | None = None,
    ) -> VariantSample:
        """From `functions.adapters.cloudwatch.metric_stats` results over the test window:
        `Invocation5XXErrors` with stats ["Sum", "SampleCount"] and `ModelLatency` with ["Average", "SampleCount"].
        """
        requests = round(sum(errors.get("SampleCount", [])))
        failed = round(sum(errors.get("Sum", [])))
        lat = None
        if latency is not None and latency.get("Average"):
            lat = LatencySummary.from_period_stats(latency["Average"], latency.get("SampleCount", []))
        return cls(name=name, requests=requests, errors=failed, latency=lat)

    @model_validator(mode="after")
    def _consistent(self) -> VariantSample:
        if self.errors > self.requests:
            raise ValueError(f"{self.name}: errors ({self.errors}) cannot exceed requests ({self.requests})")
        return self


class VerdictPolicy(_Frozen):
    """Error rates, margins and minimums of the verdict. Defaults are safe: alpha = 5 %."""

    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    min_requests: int = Field(default=100, ge=2, description="per variant before any decision")
    min_latency_samples: int = Field(default=30, ge=2, description="latency observations per variant")
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
    metric: Literal["error_rate", "log_latency", "latency_tail", "paired_auc", "paired_accuracy"]
    decision: Decision
    production_samples: int
    shadow_samples: int
    production_estimate: float
    shadow_estimate: float
    difference: float  # shadow - production (higher = worse)
    ci_low: float  # always-valid (1 - alpha) confidence sequence for the difference
    ci_high: float
    margin: float  # PROMOTE needs ci_high < margin
    msprt: float | None = None  # mixture likelihood ratio at "no difference" (capped at 1e300)
    threshold: float | None = None  # 1/alpha: REJECT needs msprt ≥ threshold
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


def _metric(
    metric: Literal["error_rate", "log_latency", "latency_tail"],
    sample: TwoSample,
    n_prod: int,
    n_shadow: int,
    *,
    tau: float,
    margin: float,
    alpha: float,
) -> MetricEvidence:
    result = judge_higher_is_worse(sample, tau=tau, alpha=alpha, margin=margin)
    decision = Decision.REJECT if result.worse else Decision.PROMOTE if result.non_inferior else Decision.CONTINUE
    lr = math.exp(min(result.log_lr, 690.0))
    lo, hi = result.interval
    if metric == "log_latency":
        ratio = math.exp(sample.difference)
        summary = (
            f"latency x{ratio:.3f} (geometric mean, CI x{math.exp(lo):.3f}-x{math.exp(hi):.3f}, "
            f"margin x{math.exp(margin):.3f})"
        )
    else:
        label = "error rate" if metric == "error_rate" else "share above tail threshold"
        summary = (
            f"{label} {_pct(sample.mean_b)} vs {_pct(sample.mean_a)} ({_pp(sample.difference)}, "
            f"CI [{_pp(lo)}, {_pp(hi)}], margin {_pp(margin)})"
        )
    summary += f"; mSPRT {lr:.3g} vs {1 / alpha:.0f}"
    return MetricEvidence(
        metric=metric,
        decision=decision,
        production_samples=n_prod,
        shadow_samples=n_shadow,
        production_estimate=sample.mean_a,
        shadow_estimate=sample.mean_b,
        difference=sample.difference,
        ci_low=lo,
        ci_high=hi,
        margin=margin,
        msprt=lr,
        threshold=1.0 / alpha,
        summary=summary,
    )


def sequential_evidence(prod: VariantSample, shadow: VariantSample, policy: VerdictPolicy) -> list[MetricEvidence]:
    """Per-metric sequential evidence (callers normally use `decide`)."""
    out = [
        _metric(
            "error_rate",
            bernoulli_difference(prod.errors, prod.requests, shadow.errors, shadow.requests),
            prod.requests,
            shadow.requests,
            tau=policy.error_tau,
            margin=policy.error_margin,
            alpha=policy.alpha,
        )
    ]
    lp, ls = prod.latency, shadow.latency
    if lp is not None and ls is not None and lp.count >= 2 and ls.count >= 2:
        sample = mean_difference(lp.count, lp.mean_log, lp.var_log, ls.count, ls.mean_log, ls.var_log)
        out.append(
            _metric(
                "log_latency",
                sample,
                lp.count,
                ls.count,
                tau=policy.latency_tau,
                margin=math.log1p(policy.latency_margin),
                alpha=policy.alpha,
            )
        )
        if lp.exceed_count is not None and ls.exceed_count is not None:
            out.append(
                _metric(
                    "latency_tail",
                    bernoulli_difference(lp.exceed_count, lp.count, ls.exceed_count, ls.count),
                    lp.count,
                    ls.count,
                    tau=policy.tail_tau,
                    margin=policy.tail_margin,
                    alpha=policy.alpha,
                )
            )
    return out


def _missing(prod: VariantSample, shadow: VariantSample, policy: VerdictPolicy) -> str | None:
    for v in (prod, shadow):
        if v.requests < policy.min_requests:
            return f"{v.name} has {v.requests} requests (< {policy.min_requests} needed)"
        if policy.require_latency:
            if v.latency is None:
                return f"{v.name} has no latency data"
            if v.latency.count < policy.min_latency_samples:
                return f"{v.name} has {v.latency.count} latency samples (< {policy.min_latency_samples} needed)"
    return None


def decide(
    prod: VariantSample,
    shadow: VariantSample,
    policy: VerdictPolicy | None = None,
    *,
    final: bool = False,
    paired: list[MetricEvidence] | None = None,
    malformed_fraction: float | None = None,
) -> Verdict:
    """The verdict at one poll, from cumulative counts since the test started.

    `final=True` at the end of the allotted time: an undecided test becomes INCONCLUSIVE.
    `paired`: evidence from ground-truth pairing (`functions.stats.paired.PairedReport.evidence()`), any
    REJECT there rejects. `malformed_fraction`: from `functions.stats.data_quality.malformed_fraction`; above
    `policy.max_malformed_fraction` a PROMOTE is withheld (CONTINUE, or INCONCLUSIVE when final).
    """
    policy = policy or VerdictPolicy()
    head = f"{shadow.name} vs {prod.name} after {shadow.requests}/{prod.requests} requests"
    missing = _missing(prod, shadow, policy)
    if missing is not None:
        return Verdict(
            decision=Decision.NO_DATA,
            action=policy.on_inconclusive if final else None,
            final=final,
            alpha=policy.alpha,
            production=prod.name,
            shadow=shadow.name,
            metrics=[],
            explanation=f"NO_DATA: {missing}" + (f"; default action {policy.on_inconclusive}" if final else ""),
        )
    metrics = sequential_evidence(prod, shadow, policy) + list(paired or [])
    blocked = None
    if malformed_fraction is not None and malformed_fraction > policy.max_malformed_fraction:
        blocked = (
            f"{_pct(malformed_fraction)} of captured requests are malformed "
            f"(> {_pct(policy.max_malformed_fraction)}): the test says little about real traffic"
        )
    rejected = [m for m in metrics if m.decision is Decision.REJECT]
    all_promote = all(m.decision is Decision.PROMOTE for m in metrics)
    if rejected:
        decision, action = Decision.REJECT, "Remove"
        reason = "; ".join(m.summary for m in rejected)
    elif all_promote and blocked is None:
        decision, action = Decision.PROMOTE, "Promote"
        reason = "; ".join(m.summary for m in metrics)
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
        explanation=f"{decision.value}: {head}: {reason} (alpha={policy.alpha:g}, always-valid)",
    )
