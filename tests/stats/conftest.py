"""Fixtures for the statistics tests: a training-style baseline built from synthetic data with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from functions.evaluation import Baseline, CategoricalBaseline, NumericBaseline

CATEGORIES = {"married": "marital_married", "single": "marital_single", "divorced": "marital_divorced"}
COLUMNS = ["age", "balance", *CATEGORIES.values()]
PROPORTIONS = {"married": 0.6, "single": 0.3, "divorced": 0.1}


def numeric_baseline(column: str, values: np.ndarray, bins: int = 10) -> NumericBaseline:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    q = {f"p{p:02d}": float(np.quantile(values, p / 100)) for p in (1, 5, 25, 50, 75, 95, 99)}
    return NumericBaseline(
        column=column, count=len(values), missing=0, mean=float(values.mean()), std=float(values.std()),
        min=float(values.min()), max=float(values.max()), quantiles=q, bin_edges=edges.tolist(),
        bin_proportions=(counts / counts.sum()).tolist(),
    )


def sample_rows(rng: np.random.Generator, n: int, *, age_shift: float = 0.0, marital=None) -> np.ndarray:
    """Synthetic endpoint rows: age ~ N(40 + shift, 10), balance ~ lognormal, marital one-hot."""
    p = marital or PROPORTIONS
    cats = rng.choice(list(CATEGORIES), size=n, p=[p[c] for c in CATEGORIES])
    onehot = np.stack([(cats == c).astype(float) for c in CATEGORIES], axis=1)
    age = rng.normal(40 + age_shift, 10, n).round()
    balance = rng.lognormal(7, 1, n).round(2)
    return np.column_stack([age, balance, onehot])


@pytest.fixture(scope="session")
def baseline() -> Baseline:
    rng = np.random.default_rng(7)
    rows = sample_rows(rng, 20_000)
    scores = rng.beta(2, 8, 20_000)
    return Baseline(
        rows=len(rows),
        features={
            "age": numeric_baseline("age", rows[:, 0]),
            "balance": numeric_baseline("balance", rows[:, 1]),
            "marital": CategoricalBaseline(count=len(rows), missing=0, columns=CATEGORIES, proportions=PROPORTIONS),
        },
        prediction=numeric_baseline("prediction", scores),
    )


@pytest.fixture
def columns() -> list[str]:
    return list(COLUMNS)
