"""Data-quality checks of captured requests against the training baseline, as Model Monitor's
data-quality constraints do: schema (column count, numbers parse), missing values, values outside the
baseline's range (with a tolerance), and one-hot groups with no or several categories set.

`check_row` judges one request row; `check` / `check_records` count breaches over a window and keep a few
examples. `malformed_fraction(report)` is what the verdict uses to refuse a PROMOTE on junk traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.capture import CaptureRecord
from functions.evaluation import Baseline, ModelEvaluation
from functions.stats.schema import FeatureSchema, parse_value

Check = Literal[
    "unparsable_request", "column_count", "not_numeric", "missing", "out_of_range", "no_category",
    "several_categories", "not_one_hot", "unparsable_prediction", "prediction_out_of_range",
]
# breaches that make a row unusable (the model could not have answered it meaningfully)
MALFORMED: frozenset[str] = frozenset({"unparsable_request", "column_count", "not_numeric"})


class DataQualityPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    range_tolerance: float = Field(default=0.1, ge=0, description="share of the baseline range allowed beyond min/max")
    missing_tolerance: float = Field(default=0.05, ge=0, description="live missing share allowed above baseline's")
    max_examples: int = Field(default=5, ge=0)


class Breach(BaseModel):
    model_config = ConfigDict(frozen=True)

    check: Check
    feature: str | None = None
    value: str | None = None
    detail: str = ""


class Example(BaseModel):
    model_config = ConfigDict(frozen=True)

    request: str | None  # inference id / event id
    row: int
    check: Check
    feature: str | None
    value: str | None
    detail: str


class CheckCount(BaseModel):
    check: Check
    count: int
    features: dict[str, int]
    examples: list[Example]


class DataQualityReport(BaseModel):
    requests: int  # capture records (or rows, for bare rows)
    rows: int
    malformed_rows: int  # rows with a schema breach (counted also when the whole request failed to parse)
    rows_with_breaches: int
    breaches: list[CheckCount]  # most frequent first
    completeness: dict[str, float]  # feature -> live missing share, for features worse than baseline + tolerance
    explanation: str

    def count(self, check: Check) -> int:
        return next((b.count for b in self.breaches if b.check == check), 0)


def check_row(schema: FeatureSchema, row: Sequence[str | float | None], policy: DataQualityPolicy | None = None) -> list[Breach]:
    """Breaches of one input row; an empty list means the row is clean."""
    policy = policy or DataQualityPolicy()
    if len(row) != len(schema.columns):
        return [Breach(check="column_count", value=str(len(row)), detail=f"{len(row)} columns, expected {len(schema.columns)}")]
    values: list[float | None] = []
    bad: list[Breach] = []
    for name, field in zip(schema.columns, row, strict=True):
        try:
            values.append(parse_value(field))
        except ValueError:
            values.append(None)
            bad.append(Breach(check="not_numeric", feature=name, value=str(field)[:40]))
    if bad:
        return bad
    out: list[Breach] = []
    for f in schema.numeric:
        v, b = values[f.index], f.baseline
        if v is None:
            out.append(Breach(check="missing", feature=f.name))
        elif b.min is not None and b.max is not None:
            slack = policy.range_tolerance * (b.max - b.min)
            if not b.min - slack <= v <= b.max + slack:
                out.append(Breach(check="out_of_range", feature=f.name, value=f"{v:g}", detail=f"baseline [{b.min:g}, {b.max:g}]"))
    for g in schema.categorical:
        group = {c: values[i] for c, i in g.indices.items()}
        if any(v is None for v in group.values()):
            out.append(Breach(check="missing", feature=g.name))
            continue
        if any(v not in (0.0, 1.0) for v in group.values()):
            out.append(Breach(check="not_one_hot", feature=g.name, detail="values other than 0/1"))
            continue
        hot = [c for c, v in group.items() if v == 1.0]
        if not hot:
            out.append(Breach(check="no_category", feature=g.name, detail="no category set: unseen category"))
        elif len(hot) > 1:
            out.append(Breach(check="several_categories", feature=g.name, value="|".join(hot[:4])))
    return out


class DataQualityWindow:
    """Streaming breach counter over one window: feed rows or capture records, then `report()`."""

    def __init__(
        self,
        baseline: ModelEvaluation | Baseline,
        *,
        columns: Sequence[str] | None = None,
        policy: DataQualityPolicy | None = None,
    ) -> None:
        self.schema, self.policy = FeatureSchema.of(baseline, columns), policy or DataQualityPolicy()
        self.requests = self.rows = self.malformed = self.breached = 0
        self.counts: dict[str, CheckCount] = {}
        self.missing: dict[str, int] = {}

    def record(self, breach: Breach, request: str | None, row: int) -> None:
        cc = self.counts.setdefault(breach.check, CheckCount(check=breach.check, count=0, features={}, examples=[]))
        cc.count += 1
        if breach.feature:
            cc.features[breach.feature] = cc.features.get(breach.feature, 0) + 1
        if len(cc.examples) < self.policy.max_examples:
            cc.examples.append(Example(request=request, row=row, check=breach.check, feature=breach.feature, value=breach.value, detail=breach.detail))

    def add_row(self, row: Sequence[str | float | None], request: str | None, index: int) -> None:
        self.rows += 1
        breaches = check_row(self.schema, row, self.policy)
        if breaches:
            self.breached += 1
            if any(b.check in MALFORMED for b in breaches):
                self.malformed += 1
        for b in breaches:
            self.record(b, request, index)
            if b.check == "missing" and b.feature:
                self.missing[b.feature] = self.missing.get(b.feature, 0) + 1

    def add_record(self, rec: CaptureRecord) -> None:
        self.requests += 1
        if rec.rows is None:
            if rec.input_error is not None:
                self.add_failed_request("unparsable_request", rec.key, rec.input_error)
            return
        for i, row in enumerate(rec.rows):
            self.add_row(row, rec.key, i)
        if rec.output_error is not None:
            self.record(Breach(check="unparsable_prediction", detail=rec.output_error[:200]), rec.key, 0)
        for i, s in enumerate(rec.scores or ()):
            if not 0.0 <= s <= 1.0:
                self.record(Breach(check="prediction_out_of_range", feature="prediction", value=f"{s:g}"), rec.key, i)

    def add_failed_request(self, check: Check, request: str | None, detail: str) -> None:
        self.rows += 1
        self.malformed += 1
        self.breached += 1
        self.record(Breach(check=check, detail=detail[:200]), request, 0)

    def report(self) -> DataQualityReport:
        clean_rows = self.rows - self.malformed
        completeness: dict[str, float] = {}
        baseline_missing = {
            name: b.missing / b.count if b.count else 0.0
            for name, b in self.schema.baseline.features.items()
        }
        for feature, k in self.missing.items():
            share = k / clean_rows if clean_rows else 0.0
            if share > baseline_missing.get(feature, 0.0) + self.policy.missing_tolerance:
                completeness[feature] = share
        breaches = sorted(self.counts.values(), key=lambda c: c.count, reverse=True)
        if not self.rows:
            text = "no rows captured"
        elif not breaches:
            text = f"{self.rows} rows, no breaches"
        else:
            text = f"{self.rows} rows, {self.malformed} malformed, {self.breached} with breaches: " + ", ".join(
                f"{b.check} {b.count}" for b in breaches
            )
        return DataQualityReport(
            requests=self.requests, rows=self.rows, malformed_rows=self.malformed, rows_with_breaches=self.breached,
            breaches=breaches, completeness=completeness, explanation=text,
        )


def check(
    baseline: ModelEvaluation | Baseline,
    rows: Iterable[Sequence[str | float | None]],
    *,
    columns: Sequence[str] | None = None,
    policy: DataQualityPolicy | None = None,
) -> DataQualityReport:
    """Data quality of a window of input rows (endpoint column order, raw CSV fields or numbers)."""
    window = DataQualityWindow(baseline, columns=columns, policy=policy)
    for i, row in enumerate(rows):
        window.requests += 1
        window.add_row(row, None, i)
    return window.report()


def check_records(
    baseline: ModelEvaluation | Baseline,
    records: Iterable[CaptureRecord],
    *,
    columns: Sequence[str] | None = None,
    policy: DataQualityPolicy | None = None,
) -> DataQualityReport:
    """Data quality of one variant's data capture: request rows and the returned scores."""
    window = DataQualityWindow(baseline, columns=columns, policy=policy)
    for rec in records:
        window.add_record(rec)
    return window.report()


def malformed_fraction(report: DataQualityReport) -> float | None:
    """Share of captured rows the model could not meaningfully answer; None when nothing was captured.

    Pass it to `functions.stats.verdict.decide(..., malformed_fraction=...)`.
    """
    return report.malformed_rows / report.rows if report.rows else None
