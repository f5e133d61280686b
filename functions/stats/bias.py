"""Bias of the live predictions on a sensitive facet, with the definitions training uses.

Per group, the selection rate is the share of rows predicted positive (score >= threshold). As fairlearn's
`demographic_parity_difference` / `demographic_parity_ratio` (and as evaluation.json's `FacetBias`):
difference = max - min of the group selection rates (SageMaker Clarify's DPPL on predictions), ratio =
min / max (the disparate impact; 1 = parity). Groups come from a one-hot feature (e.g. gender) or from
cutting a numeric column (e.g. age into age groups, right-closed bins as `pandas.cut`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.evaluation import Baseline, FacetBias, ModelEvaluation
from functions.stats.schema import FeatureSchema, parse_value


class GroupSelection(BaseModel):
    model_config = ConfigDict(frozen=True)

    group: str
    count: int
    selection_rate: float


class BiasReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    facet: str
    rows: int
    groups: list[GroupSelection]
    demographic_parity_difference: float
    demographic_parity_ratio: float  # = disparate impact (min/max)
    disparate_impact: float
    training_disparate_impact: float | None = None
    disparate_impact_change: float | None = None  # live - training
    within_bound: bool | None = None  # |1 - DI| <= max_deviation, when a bound was given
    explanation: str


def check(
    scores: Iterable[float],
    groups: Iterable[str | None],
    *,
    facet: str,
    threshold: float = 0.5,
    min_group_size: int = 1,
    training: FacetBias | None = None,
    max_deviation: float | None = None,
) -> BiasReport:
    """Selection rates per group and their parity difference and ratio (rows with no group are skipped)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must lie in (0, 1)")
    counts: dict[str, list[int]] = {}
    for score, group in zip(scores, groups, strict=True):
        if group is None:
            continue
        c = counts.setdefault(group, [0, 0])
        c[0] += 1
        c[1] += score >= threshold
    rates = [
        GroupSelection(group=g, count=n, selection_rate=pos / n)
        for g, (n, pos) in sorted(counts.items())
        if n >= min_group_size
    ]
    if len(rates) < 2:
        raise ValueError(f"facet {facet!r}: need at least two groups with >= {min_group_size} rows, got {len(rates)}")
    hi = max(r.selection_rate for r in rates)
    lo = min(r.selection_rate for r in rates)
    ratio = lo / hi if hi > 0 else 1.0  # fairlearn: no positives anywhere is parity
    train_di = training.disparate_impact if training is not None else None
    within = None if max_deviation is None else abs(1.0 - ratio) <= max_deviation
    text = f"{facet}: selection rates " + ", ".join(f"{r.group} {100 * r.selection_rate:.1f}%" for r in rates)
    text += f"; difference {hi - lo:.3f}, disparate impact {ratio:.3f}"
    if train_di is not None:
        text += f" (training {train_di:.3f})"
    if within is not None:
        text += f"; {'within' if within else 'OUTSIDE'} |1 - DI| <= {max_deviation:g}"
    return BiasReport(
        facet=facet, rows=sum(r.count for r in rates), groups=rates,
        demographic_parity_difference=hi - lo, demographic_parity_ratio=ratio, disparate_impact=ratio,
        training_disparate_impact=train_di,
        disparate_impact_change=None if train_di is None else ratio - train_di,
        within_bound=within, explanation=text,
    )


class NumericCut(BaseModel):
    """Right-closed bins over a numeric feature: edges [0, 29, 59, 200] with labels ["<30", "30-59", "60+"]."""

    model_config = ConfigDict(frozen=True)

    edges: list[float] = Field(min_length=2)
    labels: list[str]

    @model_validator(mode="after")
    def _shape(self) -> NumericCut:
        if len(self.labels) != len(self.edges) - 1:
            raise ValueError("a cut needs one label per bin")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("cut edges must be strictly ascending")
        return self

    def label(self, value: float) -> str | None:
        if not self.edges[0] < value <= self.edges[-1]:
            return None
        return self.labels[bisect.bisect_left(self.edges, value) - 1]


def facet_groups(
    baseline: ModelEvaluation | Baseline,
    rows: Iterable[Sequence[str | float | None]],
    facet: str,
    *,
    columns: Sequence[str] | None = None,
    cut: NumericCut | None = None,
) -> list[str | None]:
    """The facet's group for each input row: the hot category of a one-hot feature, or `cut` of a numeric
    one. None for rows that are malformed or have no (or several) categories set."""
    schema = FeatureSchema.of(baseline, columns)
    cat = next((f for f in schema.categorical if f.name == facet), None)
    num = next((f for f in schema.numeric if f.name == facet), None)
    if cat is None and (num is None or cut is None):
        raise ValueError(f"facet {facet!r} is not a one-hot feature of the baseline (or a numeric one with a cut)")
    out: list[str | None] = []
    for row in rows:
        try:
            values = [parse_value(f) for f in row] if len(row) == len(schema.columns) else None
        except ValueError:
            values = None
        if values is None:
            out.append(None)
        elif cat is not None:
            hot = [c for c, i in cat.indices.items() if values[i] == 1.0]
            out.append(hot[0] if len(hot) == 1 else None)
        else:
            v = values[num.index]  # type: ignore[union-attr]
            out.append(None if v is None else cut.label(v))  # type: ignore[union-attr]
    return out
