"""Request-by-request comparison of production and shadow from data capture (and ground truth).

Joins the two variants' capture records on the inference id, so both models are judged on the very same
requests: agreement of predicted labels, distribution of score differences, and, where labels exist,
accuracy (McNemar's exact and mid-p tests) and AUC (DeLong's paired test) of both on the same rows.
That catches a model with the same error rate and latency but worse answers, which CloudWatch cannot see.

Memory is bounded: request ids are kept by a seeded hash below a moving cutoff (a bottom-k / coordinated
sample), so the same ids survive on both sides and in the ground truth, and at most ~`max_pairs` are held.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from functions.capture import CaptureRecord, GroundTruthRecord
from functions.stats.distributions import binom_cdf, binom_logpmf, normal_ppf, normal_sf
from functions.stats.verdict import Decision, MetricEvidence, VerdictPolicy


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ScoreDifference(_Frozen):
    """Distribution of shadow score - production score over the paired rows."""

    mean: float
    mean_abs: float
    max_abs: float
    p05: float
    p25: float
    p50: float
    p75: float
    p95: float


class PairedAccuracy(_Frozen):
    production: float
    shadow: float
    production_only_correct: int  # McNemar's b
    shadow_only_correct: int  # McNemar's c
    p_value: float  # exact two-sided (binomial on b + c discordant pairs)
    mid_p: float  # mid-p variant (less conservative, close to nominal size)


class PairedAuc(_Frozen):
    production: float
    shadow: float
    difference: float  # shadow - production
    standard_error: float
    z: float
    p_value: float  # two-sided, DeLong
    ci_low: float  # fixed-sample (1 - alpha) CI for the difference at the policy's alpha
    ci_high: float


class PairedReport(_Frozen):
    production_records: int
    shadow_records: int
    matched_requests: int  # requests in the (sampled) join
    pairs: int  # scored rows in the join
    sampled: bool  # True when the join was thinned to stay under max_pairs
    threshold: float  # the shadow model's decision threshold
    production_threshold: float | None = None  # production's own (None: the shadow's was used for both)
    agreement: float | None  # share of rows with the same predicted label
    score_difference: ScoreDifference | None
    labeled: int
    accuracy: PairedAccuracy | None
    auc: PairedAuc | None

    def evidence(self, policy: VerdictPolicy | None = None) -> list[MetricEvidence]:
        """Paired quality evidence for `functions.stats.verdict.decide(..., paired=...)`.

        Differences are production - shadow (loss of quality: higher = worse, like the other metrics).
        These are fixed-sample tests: use them once, at the end of the test. The accuracy CI is Tango's score
        interval (never of zero width, unlike the Wald interval when b = c = 0).
        """
        policy = policy or VerdictPolicy()
        out: list[MetricEvidence] = []
        normal_ppf(1 - policy.paired_alpha / 2)
        if self.auc is not None:
            a = self.auc
            loss, lo, hi = -a.difference, -a.ci_high, -a.ci_low
            out.append(
                _evidence(
                    "paired_auc", self.labeled, a.production, a.shadow, loss, lo, hi,
                    policy.auc_margin, a.p_value, policy,
                    f"AUC {a.shadow:.4f} vs {a.production:.4f} on the same {self.labeled} labeled rows "
                    f"(loss {loss:+.4f}, CI [{lo:+.4f}, {hi:+.4f}], DeLong p={a.p_value:.3g})",
                )
            )
        if self.accuracy is not None:
            acc = self.accuracy
            b, c, n = acc.production_only_correct, acc.shadow_only_correct, self.labeled
            loss = (b - c) / n
            lo, hi = tango_interval(b, c, n, policy.paired_alpha)
            out.append(
                _evidence(
                    "paired_accuracy", n, acc.production, acc.shadow, loss, lo, hi,
                    policy.accuracy_margin, acc.mid_p, policy,
                    f"accuracy {acc.shadow:.4f} vs {acc.production:.4f} (b={b}, c={c}, McNemar mid-p={acc.mid_p:.3g})",
                )
            )
        return out


def _evidence(
    metric, n, prod, shadow, loss, lo, hi, margin, p_value, policy: VerdictPolicy, summary: str
) -> MetricEvidence:
    if n < policy.min_labeled:
        decision = Decision.CONTINUE
        summary += f"; only {n} labeled rows (< {policy.min_labeled})"
    elif p_value < policy.paired_alpha and loss > 0:
        decision = Decision.REJECT
    elif hi < margin:
        decision = Decision.PROMOTE
    else:
        decision = Decision.CONTINUE
    return MetricEvidence(
        metric=metric, decision=decision, production_samples=n, shadow_samples=n,
        production_estimate=prod, shadow_estimate=shadow, difference=loss, ci_low=lo, ci_high=hi,
        margin=margin, p_value=p_value, summary=summary,
    )


# ---- statistics -----------------------------------------------------------------------------------------


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default 'linear' method) of an already sorted list."""
    if not sorted_values:
        raise ValueError("quantile of an empty list")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def midranks(values: list[float]) -> list[float]:
    """1-based ranks with ties given their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auc(scores: list[float], labels: list[int]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half)."""
    return _delong_components(scores, labels)[0]


def _delong_components(scores: list[float], labels: list[int]) -> tuple[float, list[float], list[float]]:
    """AUC and DeLong's structural components V10 (per positive) and V01 (per negative); Sun & Xu 2014."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("AUC needs both positive and negative labels")
    tz = midranks(pos + neg)
    tx, ty = midranks(pos), midranks(neg)
    v10 = [(tz[i] - tx[i]) / n for i in range(m)]
    v01 = [1.0 - (tz[m + j] - ty[j]) / m for j in range(n)]
    return sum(v10) / m, v10, v01


def _cov(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / (len(a) - 1) if len(a) > 1 else 0.0


def delong_paired(
    scores_a: list[float], scores_b: list[float], labels: list[int], alpha: float = 0.05
) -> PairedAuc:
    """DeLong, DeLong & Clarke-Pearson (1988) test of AUC(b) - AUC(a) on the same labeled rows."""
    auc_a, v10a, v01a = _delong_components(scores_a, labels)
    auc_b, v10b, v01b = _delong_components(scores_b, labels)
    m, n = len(v10a), len(v01a)
    var = (_cov(v10a, v10a) + _cov(v10b, v10b) - 2 * _cov(v10a, v10b)) / m + (
        _cov(v01a, v01a) + _cov(v01b, v01b) - 2 * _cov(v01a, v01b)
    ) / n
    diff = auc_b - auc_a
    se = math.sqrt(max(var, 0.0))
    if se == 0.0:
        z, p = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    else:
        z = diff / se
        p = min(1.0, 2 * normal_sf(abs(z)))
    half = normal_ppf(1 - alpha / 2) * se
    return PairedAuc(
        production=auc_a, shadow=auc_b, difference=diff, standard_error=se, z=z, p_value=p,
        ci_low=diff - half, ci_high=diff + half,
    )


def tango_interval(b: int, c: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Tango's (1998) score interval for a paired difference of proportions δ = (b - c) / n.

    b = pairs where only the first model is right, c = only the second, n = all pairs. The score statistic
    Z(δ) = (b - c - nδ) / sqrt(n (2 p̂21(δ) + δ(1 - δ))) uses the restricted MLE of the discordant cell, so
    the interval stays honest at b = c = 0 (upper end z² / (n + z²)) where the Wald interval is [0, 0].
    """
    if n <= 0 or b < 0 or c < 0 or b + c > n:
        raise ValueError("need 0 <= b + c <= n and n > 0")
    z = normal_ppf(1 - alpha / 2)

    def score(d: float) -> float:
        a_, b_ = 2.0 * n, -b - c + (2.0 * n - b + c) * d
        c_ = -c * d * (1 - d)
        p21 = max(0.0, (-b_ + math.sqrt(max(b_ * b_ - 4 * a_ * c_, 0.0))) / (2 * a_))
        var = n * (2 * p21 + d * (1 - d))
        num = b - c - n * d
        if var <= 0:
            return math.copysign(math.inf, num) if num else 0.0
        return num / math.sqrt(var)

    est = (b - c) / n

    def solve(lo: float, hi: float, target: float) -> float:
        # score() decreases in d: find score(d) = target between lo and hi
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if score(mid) > target:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    low = -1.0 if score(-1.0 + 1e-12) <= z else solve(-1.0 + 1e-12, est, z)
    high = 1.0 if score(1.0 - 1e-12) >= -z else solve(est, 1.0 - 1e-12, -z)
    return low, high


def mcnemar(b: int, c: int) -> tuple[float, float]:
    """McNemar's exact two-sided p-value and mid-p for b and c discordant pairs."""
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0, 1.0
    tail = 2 * binom_cdf(k, n, 0.5)
    return min(1.0, tail), min(1.0, tail - math.exp(binom_logpmf(k, n, 0.5)))


# ---- the join --------------------------------------------------------------------------------------------


class _Row(NamedTuple):
    production: float
    shadow: float
    label: int | None


class _CoordinatedSample:
    """Keeps the entries whose seeded hash is below a cutoff, lowering it to stay near `cap` entries."""

    def __init__(self, cap: int, seed: int) -> None:
        self.cap, self.cutoff, self.thinned = cap, 1 << 64, False
        self._salt = seed.to_bytes(8, "little", signed=True)
        self.items: dict[str, tuple[int, list[float]]] = {}

    def hash(self, key: str) -> int:
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8, salt=self._salt).digest(), "little")

    def add(self, key: str, value: list[float]) -> None:
        h = self.hash(key)
        if h >= self.cutoff:
            return
        self.items[key] = (h, value)
        if len(self.items) > self.cap + self.cap // 2:
            kept = sorted(self.items.items(), key=lambda kv: kv[1][0])[: self.cap]
            self.cutoff = kept[-1][1][0] + 1
            self.items = dict(kept)
            self.thinned = True


def compare(
    production: Iterable[CaptureRecord],
    shadow: Iterable[CaptureRecord],
    ground_truth: Iterable[GroundTruthRecord] | None = None,
    *,
    threshold: float = 0.5,
    max_pairs: int = 50_000,
    seed: int = 0,
    alpha: float = 0.05,
    production_threshold: float | None = None,
) -> PairedReport:
    """Pair the variants' captured answers by inference id (shadow first: it is the smaller side).

    `threshold` is the shadow model's decision threshold, `production_threshold` production's own (each model's
    labels, accuracy and agreement at its own threshold; None = the shadow's for both).
    """
    for t in (threshold, production_threshold if production_threshold is not None else threshold):
        if not 0.0 < t < 1.0:
            raise ValueError("threshold must lie in (0, 1)")
    if max_pairs < 1:
        raise ValueError("max_pairs must be positive")
    sample = _CoordinatedSample(max_pairs, seed)
    n_shadow = 0
    for rec in shadow:
        n_shadow += 1
        if rec.scores:
            sample.add(rec.key, rec.scores)
    joined: dict[str, tuple[list[float], list[float]]] = {}
    n_prod = 0
    for rec in production:
        n_prod += 1
        hit = sample.items.get(rec.key)
        if rec.scores and hit is not None and len(hit[1]) == len(rec.scores):
            joined[rec.key] = (rec.scores, hit[1])
    labels: dict[str, list[int]] = {}
    for gt in ground_truth or ():
        if gt.event_id in joined and len(gt.labels) == len(joined[gt.event_id][0]):
            labels[gt.event_id] = gt.labels
    rows = [
        _Row(p, s, labels[key][i] if key in labels else None)
        for key, (ps, ss) in joined.items()
        for i, (p, s) in enumerate(zip(ps, ss, strict=True))
    ]
    return _report(rows, n_prod, n_shadow, len(joined), sample.thinned, threshold, alpha, production_threshold)


def _report(
    rows: list[_Row], n_prod: int, n_shadow: int, matched: int, thinned: bool, threshold: float, alpha: float,
    production_threshold: float | None = None,
) -> PairedReport:
    agreement = diff = None
    t_prod = threshold if production_threshold is None else production_threshold
    if rows:
        agreement = sum((r.production >= t_prod) == (r.shadow >= threshold) for r in rows) / len(rows)
        d = sorted(r.shadow - r.production for r in rows)
        diff = ScoreDifference(
            mean=math.fsum(d) / len(d),
            mean_abs=math.fsum(abs(x) for x in d) / len(d),
            max_abs=max(abs(d[0]), abs(d[-1])),
            **{f"p{q:02d}": quantile(d, q / 100) for q in (5, 25, 50, 75, 95)},
        )
    labeled = [r for r in rows if r.label is not None]
    accuracy = auc_ = None
    if labeled:
        y = [r.label for r in labeled]
        ok_p = [(r.production >= t_prod) == bool(r.label) for r in labeled]
        ok_s = [(r.shadow >= threshold) == bool(r.label) for r in labeled]
        b = sum(p and not s for p, s in zip(ok_p, ok_s, strict=True))
        c = sum(s and not p for p, s in zip(ok_p, ok_s, strict=True))
        exact, mid = mcnemar(b, c)
        accuracy = PairedAccuracy(
            production=sum(ok_p) / len(labeled), shadow=sum(ok_s) / len(labeled),
            production_only_correct=b, shadow_only_correct=c, p_value=exact, mid_p=mid,
        )
        if 0 < sum(y) < len(y):  # type: ignore[arg-type]
            auc_ = delong_paired(
                [r.production for r in labeled], [r.shadow for r in labeled], y, alpha  # type: ignore[arg-type]
            )
    return PairedReport(
        production_records=n_prod, shadow_records=n_shadow, matched_requests=matched, pairs=len(rows),
        sampled=thinned, threshold=threshold, production_threshold=production_threshold, agreement=agreement, score_difference=diff,
        labeled=len(labeled), accuracy=accuracy, auc=auc_,
    )
