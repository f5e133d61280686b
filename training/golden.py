"""The golden sample recorded in `evaluation.json` (`functions.evaluation.GoldenSample`).

A few rows of the test split exactly as the endpoint receives them (the split's SageMaker CSV lines without the
label) and the scores the model gave those very lines at training. Pre-flight (functions/steps/preflight.py)
loads the uploaded artifact as the serving container does and must get the same scores back (relative 1e-6),
so a swapped, truncated or mis-packaged artifact is caught before any endpoint change.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from functions.evaluation import GoldenSample
from training.prepare import Split

GOLDEN_ROWS = 20


def csv_rows(split: Split, n: int = GOLDEN_ROWS) -> list[str]:
    """The first n rows of a split's CSV (label first, no header) as request lines: the label dropped."""
    lines = [line for line in split.csv.decode("utf-8").splitlines() if line.strip()][:n]
    return [line.split(",", 1)[1] for line in lines]


def parse_rows(rows: list[str]) -> np.ndarray:
    """The lines parsed as the container's CSV reader does (empty field = missing), float64."""
    return np.array([["nan" if x == "" else x for x in row.split(",")] for row in rows]).astype(float)


def golden_sample(split: Split, score: Callable[[np.ndarray], np.ndarray], num_features: int,
                  n: int = GOLDEN_ROWS) -> GoldenSample:
    """`score` maps the parsed rows to the model's answers (for xgboost: predict on a DMatrix of them)."""
    rows = csv_rows(split, n)
    predictions = np.asarray(score(parse_rows(rows)), dtype=np.float64).ravel()
    return GoldenSample(split="test", rows=rows, predictions=[float(p) for p in predictions],
                        num_features=num_features)
