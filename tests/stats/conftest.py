"""Fixtures for the statistics tests: a training-style baseline and evaluation.json around synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from stats_synthetic import CATEGORIES, COLUMNS, PROPORTIONS, numeric_baseline, sample_rows

from functions.evaluation import Baseline, CategoricalBaseline


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
