"""Synthetic data for the statistics tests: endpoint rows and training-style baselines (numpy)."""

from __future__ import annotations

import numpy as np

from functions.evaluation import NumericBaseline

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


