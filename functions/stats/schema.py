"""The endpoint's input schema as the training baseline describes it: which CSV column is which feature.

`evaluation.json` lists the endpoint's column order (`features`) and, per raw feature, a numeric baseline on
one column or a categorical baseline one-hot encoded over several columns. Drift and data-quality checks
both read captured rows through this one mapping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from functions.evaluation import Baseline, CategoricalBaseline, ModelEvaluation, NumericBaseline

_MISSING = {"", "nan", "na", "null", "none"}


@dataclass(frozen=True)
class NumericFeature:
    name: str
    index: int
    baseline: NumericBaseline


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    indices: dict[str, int]  # category -> column index
    baseline: CategoricalBaseline


@dataclass(frozen=True)
class FeatureSchema:
    columns: tuple[str, ...]
    numeric: tuple[NumericFeature, ...]
    categorical: tuple[CategoricalFeature, ...]
    baseline: Baseline

    @classmethod
    def of(cls, source: ModelEvaluation | Baseline, columns: Sequence[str] | None = None) -> FeatureSchema:
        """From a ModelEvaluation (its `features` order), or a Baseline plus the endpoint's column order."""
        if isinstance(source, ModelEvaluation):
            columns, baseline = source.features, source.baseline
        else:
            baseline = source
            if columns is None:
                raise ValueError("a bare Baseline needs the endpoint's column order (evaluation.features)")
        index = {c: i for i, c in enumerate(columns)}
        numeric, categorical = [], []
        for name, fb in baseline.features.items():
            if isinstance(fb, NumericBaseline):
                if fb.column not in index:
                    raise ValueError(f"baseline feature {name!r}: column {fb.column!r} is not an endpoint column")
                numeric.append(NumericFeature(name, index[fb.column], fb))
            else:
                missing = sorted(c for c in fb.columns.values() if c not in index)
                if missing:
                    raise ValueError(f"baseline feature {name!r}: columns {missing} are not endpoint columns")
                categorical.append(CategoricalFeature(name, {k: index[c] for k, c in fb.columns.items()}, fb))
        return cls(tuple(columns), tuple(numeric), tuple(categorical), baseline)


def parse_value(field: str | float | int | None) -> float | None:
    """A CSV field as a float; None when missing; ValueError when it is not a number."""
    if field is None:
        return None
    if isinstance(field, int | float):
        return None if math.isnan(field) else float(field)
    text = field.strip()
    if text.lower() in _MISSING:
        return None
    value = float(text)  # raises ValueError for non-numbers
    if math.isnan(value):
        return None
    return value
