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
    scores = 1 / (1 + np.exp(-(rng.normal(0, np.hypot(1.5, 0.4), 20_000) - 2)))  # like the synthetic models
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


@pytest.fixture(scope="session")
def evaluation(baseline):
    """A complete evaluation.json model around the synthetic baseline (threshold 0.5)."""
    from functions.evaluation import ModelEvaluation

    metrics = {
        "auc": 0.8, "accuracy": 0.9, "precision": 0.6, "recall": 0.4, "f1": 0.48, "log_loss": 0.3, "brier": 0.08,
        "threshold": 0.5, "rows": 1000, "positives": 110, "predicted_positive_rate": 0.08,
    }
    return ModelEvaluation.model_validate({
        "model_name": "xgb-best", "created_at": "2026-01-01T00:00:00Z", "xgboost_version": "3.0.5",
        "python_version": "3.11", "container_image": "sagemaker-xgboost:3.0-5", "container_framework_version": "3.0-5",
        "label": "y", "features": COLUMNS,
        "dataset": {
            "name": "synthetic", "source": "synthetic", "synthetic": True, "sha256": "0" * 64, "rows": 20_000,
            "label": "y", "positive_label": "1", "seed": 7,
            "splits": {"train": {"rows": 20_000, "positives": 2000, "sha256": "0" * 64}},
        },
        "metrics": metrics,
        "calibration": {"brier": 0.08, "expected_calibration_error": 0.01, "bins": []},
        "baseline": baseline.model_dump(),
        "hyperparameters": {"max_depth": 4},
        "training": {"method": "fixed", "trials": 0},
    })
