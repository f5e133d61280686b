"""Input (and prediction) drift of captured traffic against the training baseline in evaluation.json.

Numeric features: live values are binned on the baseline's own bin edges; PSI = Σ (a - e) ln(a / e) over
bins, and a KS-type statistic, the largest gap between the two binned CDFs (conservative: the gap on bin
edges never exceeds the unbinned one), with the asymptotic two-sample Kolmogorov p-value.
Categorical features (one-hot groups): PSI and Pearson's chi-square goodness of fit of the live category
counts against the baseline proportions. Conventional PSI reading: < 0.1 stable, 0.1-0.2 moderate,
> 0.2 major shift.

Calibrated to n and to the number of features (statistics audit §3 #11, #12): PSI's null grows like
(k - 1)/n (n·PSI ≈ χ²_{k-1}), so a fixed 0.2 alarms on same-distribution traffic at small n. A feature is
flagged only when BOTH its likelihood-ratio statistic G = 2 Σ O ln(O / E), scaled by m / (n + m) for the
baseline's own sample size m (a two-sample test), exceeds its χ²_{k'-1} quantile at a Bonferroni level
alpha / (features judged), AND its PSI exceeds the moderate / major cut-off (the effect is worth a notice).
Cells with an expected count below 5 are merged first (adjacent numeric bins; rare categories into one),
and PSI uses add-½ smoothed live shares on the merged cells, so an empty bin no longer explodes it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.capture import CaptureRecord
from functions.evaluation import Baseline, ModelEvaluation, NumericBaseline
from functions.stats.distributions import chi2_sf, ks_pvalue
from functions.stats.schema import FeatureSchema, parse_value

Status = Literal["stable", "moderate", "major", "insufficient"]


class DriftPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    psi_moderate: float = Field(default=0.1, gt=0)
    psi_major: float = Field(default=0.2, gt=0)
    min_rows: int = Field(default=100, ge=1, description="live values needed before a feature is judged")
    alpha: float = Field(default=0.01, gt=0, lt=1, description="family-wise false-alarm level over the features")
    min_expected: float = Field(default=5.0, gt=0, description="cells with fewer expected counts are merged")
    top: int = Field(default=5, ge=1)


class FeatureDrift(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature: str
    kind: Literal["numeric", "categorical", "prediction"]
    rows: int  # live non-missing values
    psi: float
    status: Status
    ks_statistic: float | None = None  # numeric: max gap of the binned CDFs
    ks_p_value: float | None = None
    chi2: float | None = None  # categorical
    chi2_df: int | None = None
    chi2_p_value: float | None = None
    g_statistic: float | None = None  # likelihood-ratio statistic on the merged cells, two-sample scaled
    g_df: int | None = None
    p_value: float | None = None  # of G, before the Bonferroni adjustment
    live_missing_fraction: float
    baseline_missing_fraction: float
    largest_shift: str  # the bin / category whose share moved most, e.g. "[35, 41): 12.0% -> 30.5%"


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    features: list[FeatureDrift]  # most drifted (highest PSI) first
    prediction: FeatureDrift | None = None
    top: list[str]  # names of the top drifting features (moderate or major)
    drifted: bool  # any feature (or the prediction) with a major shift
    explanation: str


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = 1e-4) -> float:
    """Population stability index of two distributions over the same bins (shares floored to avoid log 0)."""
    if len(expected) != len(actual):
        raise ValueError("psi needs the same bins on both sides")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, floor), max(a, floor)
        total += (a - e) * math.log(a / e)
    return total


def _status(value: float, rows: int, policy: DriftPolicy, p_value: float | None = None, tests: int = 1) -> Status:
    if rows < policy.min_rows:
        return "insufficient"
    if p_value is not None and p_value * max(tests, 1) >= policy.alpha:
        return "stable"  # not distinguishable from sampling noise at this n (Bonferroni over the features)
    return "major" if value > policy.psi_major else "moderate" if value > policy.psi_moderate else "stable"


def merge_cells(expected: Sequence[float], counts: Sequence[float], n: int, min_expected: float, adjacent: bool
                ) -> tuple[list[float], list[float]]:
    """Merge cells whose expected count n·e is below `min_expected`: adjacent ones (ordered bins), or all the
    sparse ones into one (categories; that pool joins the smallest other cell if it is still sparse)."""
    if n <= 0:
        return list(expected), list(counts)
    if adjacent:
        out_e: list[float] = []
        out_c: list[float] = []
        acc_e = acc_c = 0.0
        for e, c in zip(expected, counts, strict=True):
            acc_e, acc_c = acc_e + e, acc_c + c
            if acc_e * n >= min_expected:
                out_e.append(acc_e)
                out_c.append(acc_c)
                acc_e = acc_c = 0.0
        if acc_e > 0 or acc_c > 0:
            if out_e:
                out_e[-1] += acc_e
                out_c[-1] += acc_c
            else:
                out_e, out_c = [acc_e], [acc_c]
        return out_e, out_c
    dense = [(e, c) for e, c in zip(expected, counts, strict=True) if e * n >= min_expected]
    sparse_e = sum(e for e, _ in zip(expected, counts, strict=True) if e * n < min_expected)
    sparse_c = sum(c for e, c in zip(expected, counts, strict=True) if e * n < min_expected)
    if sparse_e > 0 or sparse_c > 0:
        if sparse_e * n < min_expected and dense:
            i = min(range(len(dense)), key=lambda k: dense[k][0])
            dense[i] = (dense[i][0] + sparse_e, dense[i][1] + sparse_c)
        else:
            dense.append((sparse_e, sparse_c))
    return [e for e, _ in dense], [c for _, c in dense]


def g_test(expected: Sequence[float], counts: Sequence[float], n: int, baseline_n: int | None, min_expected: float
           , adjacent: bool) -> tuple[float, int, float, float]:
    """(G scaled for the baseline's sample size, degrees of freedom, p-value, smoothed PSI) on merged cells."""
    e, c = merge_cells(expected, counts, n, min_expected, adjacent)
    k = len(e)
    if k < 2 or n <= 0:
        return 0.0, 0, 1.0, 0.0
    g = 2.0 * sum(o * math.log(o / (n * x)) for o, x in zip(c, e, strict=True) if o > 0 and x > 0)
    if any(o > 0 and x <= 0 for o, x in zip(c, e, strict=True)):
        g = math.inf  # live values where training had none at all
    if baseline_n:
        g *= baseline_n / (n + baseline_n)
    live = [(o + 0.5) / (n + 0.5 * k) for o in c]
    smoothed_psi = sum((a - x) * math.log(a / x) for a, x in zip(live, e, strict=True) if x > 0)
    return g, k - 1, (chi2_sf(g, k - 1) if math.isfinite(g) else 0.0), smoothed_psi


def _bin_label(edges: Sequence[float], i: int) -> str:
    lo = "-inf" if i == 0 else f"{edges[i - 1]:.4g}"
    hi = "+inf" if i == len(edges) else f"{edges[i]:.4g}"
    return f"[{lo}, {hi})"


def _shift(labels: Sequence[str], expected: Sequence[float], actual: Sequence[float]) -> str:
    i = max(range(len(labels)), key=lambda k: abs(actual[k] - expected[k]))
    return f"{labels[i]}: {100 * expected[i]:.1f}% -> {100 * actual[i]:.1f}%"


class _Bins:
    """Streaming counts of one numeric column on the baseline's bins (constant memory)."""

    def __init__(self, baseline: NumericBaseline) -> None:
        if not baseline.bin_proportions:
            raise ValueError(f"{baseline.column}: the baseline has no bins")
        # interior cut points: bin 0 is (-inf, e0), bin i is [e(i-1), e(i)), the last is [e(k-1), +inf)
        self.interior = list(baseline.bin_edges)
        self.counts = [0] * len(baseline.bin_proportions)
        self.missing = 0

    def add(self, v: float | None) -> None:
        if v is None:
            self.missing += 1
        else:
            self.counts[bisect.bisect_right(self.interior, v)] += 1


def numeric_drift(
    name: str, baseline: NumericBaseline, values: Iterable[float | None] | _Bins, policy: DriftPolicy,
    kind: Literal["numeric", "prediction"] = "numeric",
) -> FeatureDrift:
    """Drift of one numeric column against its baseline bins (`None` = missing value)."""
    if isinstance(values, _Bins):
        bins = values
    else:
        bins = _Bins(baseline)
        for v in values:
            bins.add(v)
    counts, missing, edges = bins.counts, bins.missing, baseline.bin_edges
    nbins = len(counts)
    n = sum(counts)
    expected = baseline.bin_proportions
    actual = [c / n for c in counts] if n else [0.0] * nbins
    value = psi(expected, actual) if n else 0.0
    d = cum_e = cum_a = 0.0
    for e, a in zip(expected, actual, strict=True):
        cum_e, cum_a = cum_e + e, cum_a + a
        d = max(d, abs(cum_a - cum_e))
    base_n = baseline.count - baseline.missing
    g, df, p, value = g_test(expected, counts, n, base_n or None, policy.min_expected, adjacent=True) if n else (
        0.0, 0, 1.0, 0.0)
    return FeatureDrift(
        feature=name, kind=kind, rows=n, psi=value, status=_status(value, n, policy, p),
        g_statistic=g if n else None, g_df=df if n else None, p_value=p if n else None,
        ks_statistic=d if n else None, ks_p_value=ks_pvalue(d, n, base_n) if n and base_n > 0 else None,
        live_missing_fraction=missing / (n + missing) if n + missing else 0.0,
        baseline_missing_fraction=baseline.missing / baseline.count if baseline.count else 0.0,
        largest_shift=_shift([_bin_label(edges, i) for i in range(nbins)], expected, actual) if n else "no data",
    )


def categorical_drift(
    name: str, proportions: dict[str, float], counts: dict[str, int], missing: int, baseline_missing: float,
    policy: DriftPolicy, baseline_n: int | None = None,
) -> FeatureDrift:
    """Drift of one categorical feature from live category counts (`missing` = rows with no valid category)."""
    cats = list(proportions)
    n = sum(counts.get(c, 0) for c in cats)
    expected = [proportions[c] for c in cats]
    actual = [counts.get(c, 0) / n for c in cats] if n else [0.0] * len(cats)
    chi2 = p = g = gp = None
    df = len(cats) - 1
    value = 0.0
    if n:
        live = [float(counts.get(c, 0)) for c in cats]
        g, _gdf, gp, value = g_test(expected, live, n, baseline_n, policy.min_expected, adjacent=False)
        # Pearson's chi-square on the same merged cells, with the same two-sample scaling
        e_m, c_m = merge_cells(expected, live, n, policy.min_expected, adjacent=False)
        df = len(e_m) - 1
        if df >= 1:
            chi2 = sum((o - n * x) ** 2 / (n * x) for o, x in zip(c_m, e_m, strict=True) if x > 0)
            if baseline_n:
                chi2 *= baseline_n / (n + baseline_n)
            p = chi2_sf(chi2, df)
        else:
            chi2, p = 0.0, 1.0
    return FeatureDrift(
        feature=name, kind="categorical", rows=n, psi=value, status=_status(value, n, policy, gp),
        chi2=chi2, chi2_df=df, chi2_p_value=p, g_statistic=g, g_df=df if n else None, p_value=gp,
        live_missing_fraction=missing / (n + missing) if n + missing else 0.0,
        baseline_missing_fraction=baseline_missing,
        largest_shift=_shift(cats, expected, actual) if n else "no data",
    )


def _explain(report_rows: int, features: list[FeatureDrift], prediction: FeatureDrift | None) -> str:
    flagged = [f for f in [*features, *([prediction] if prediction else [])] if f.status in ("major", "moderate")]
    if not flagged:
        return f"no drift over {report_rows} rows (all PSI <= moderate threshold)"
    parts = [f"{f.feature} PSI {f.psi:.3f} {f.status} ({f.largest_shift})" for f in flagged[:5]]
    return f"drift over {report_rows} rows: " + "; ".join(parts)


class DriftWindow:
    """Streaming drift accumulator: feed rows (or capture records), then `report()`. Constant memory."""

    def __init__(
        self,
        baseline: ModelEvaluation | Baseline,
        *,
        columns: Sequence[str] | None = None,
        policy: DriftPolicy | None = None,
    ) -> None:
        self.policy = policy or DriftPolicy()
        self.schema = FeatureSchema.of(baseline, columns)
        self.rows = 0
        self._num = [_Bins(f.baseline) for f in self.schema.numeric]
        self._cat: list[dict[str, int]] = [{} for _ in self.schema.categorical]
        self._cat_missing = [0] * len(self.schema.categorical)
        self._scores = _Bins(self.schema.baseline.prediction)

    def add_row(self, row: Sequence[str | float | None]) -> None:
        """One input row; rows with the wrong width or unparsable values are skipped (data quality counts them)."""
        if len(row) != len(self.schema.columns):
            return
        try:
            values = [parse_value(f) for f in row]
        except ValueError:
            return
        self.rows += 1
        for bins, feat in zip(self._num, self.schema.numeric, strict=True):
            bins.add(values[feat.index])
        for k, cat in enumerate(self.schema.categorical):
            hot = [c for c, i in cat.indices.items() if values[i] == 1.0]
            if len(hot) == 1:
                self._cat[k][hot[0]] = self._cat[k].get(hot[0], 0) + 1
            else:
                self._cat_missing[k] += 1

    def add_score(self, score: float) -> None:
        self._scores.add(score)

    def add_record(self, record: CaptureRecord) -> None:
        for row in record.rows or ():
            self.add_row(row)
        for score in record.scores or ():
            self.add_score(score)

    def report(self) -> DriftReport:
        policy, schema = self.policy, self.schema
        features = [numeric_drift(f.name, f.baseline, b, policy) for f, b in zip(schema.numeric, self._num, strict=True)]
        features += [
            categorical_drift(
                f.name, f.baseline.proportions, self._cat[k], self._cat_missing[k],
                f.baseline.missing / f.baseline.count if f.baseline.count else 0.0, policy,
                (f.baseline.count - f.baseline.missing) or None,
            )
            for k, f in enumerate(schema.categorical)
        ]
        features.sort(key=lambda f: (f.status != "insufficient", f.psi), reverse=True)
        prediction = None
        if sum(self._scores.counts):
            prediction = numeric_drift("prediction", schema.baseline.prediction, self._scores, policy, "prediction")
        judged = [f for f in [*features, *([prediction] if prediction else [])] if f.status != "insufficient"]
        # Bonferroni over the features judged: re-status each with the family size
        tests = len(judged)
        restatus = {
            id(f): _status(f.psi, f.rows, policy, f.p_value, tests) for f in judged
        }
        features = [f.model_copy(update={"status": restatus.get(id(f), f.status)}) for f in features]
        if prediction is not None:
            prediction = prediction.model_copy(update={"status": restatus.get(id(prediction), prediction.status)})
        features.sort(key=lambda f: (f.status != "insufficient", f.status in ("major", "moderate"), f.psi), reverse=True)
        judged = [f for f in [*features, *([prediction] if prediction else [])] if f.status != "insufficient"]
        return DriftReport(
            rows=self.rows,
            features=features,
            prediction=prediction,
            top=[f.feature for f in features if f.status in ("major", "moderate")][: policy.top],
            drifted=any(f.status == "major" for f in judged),
            explanation=_explain(self.rows, features, prediction),
        )


def check(
    baseline: ModelEvaluation | Baseline,
    rows: Iterable[Sequence[str | float | None]],
    *,
    columns: Sequence[str] | None = None,
    scores: Iterable[float] | None = None,
    policy: DriftPolicy | None = None,
) -> DriftReport:
    """Drift of input rows (endpoint column order, raw CSV fields or numbers) and, optionally, of scores."""
    window = DriftWindow(baseline, columns=columns, policy=policy)
    for row in rows:
        window.add_row(row)
    for score in scores or ():
        window.add_score(score)
    return window.report()


def check_records(
    baseline: ModelEvaluation | Baseline,
    records: Iterable[CaptureRecord],
    *,
    columns: Sequence[str] | None = None,
    policy: DriftPolicy | None = None,
) -> DriftReport:
    """Drift of one variant's data capture: its input rows and its output scores."""
    window = DriftWindow(baseline, columns=columns, policy=policy)
    for record in records:
        window.add_record(record)
    return window.report()
