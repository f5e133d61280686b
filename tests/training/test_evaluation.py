"""evaluation.json pieces: baselines a pure-Python drift check can use, metrics, and the model's own checks."""

import bisect
import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from functions.evaluation import NumericBaseline
from training.evaluate import calibration, choose_threshold, facet_bias, metrics, numeric_baseline


def test_numeric_baseline_bins_are_reproducible_with_bisect():
    values = np.random.default_rng(1).gamma(2.0, 3.0, 5_000)
    values[:50] = np.nan
    base = numeric_baseline("x", values)
    assert base.missing == 50 and base.count == 5_000
    present = [v for v in values.tolist() if not math.isnan(v)]
    counts = [0] * len(base.bin_proportions)
    for v in present:  # what a Lambda drift check does: no numpy
        counts[bisect.bisect_right(base.bin_edges, v)] += 1
    assert [c / len(present) for c in counts] == pytest.approx(base.bin_proportions)
    assert base.quantiles["p25"] <= base.quantiles["p50"] <= base.quantiles["p75"]


def test_discrete_column_gets_value_bins():
    base = numeric_baseline("previous", np.array([0.0] * 90 + [1.0] * 8 + [2.0] * 2))
    assert base.bin_edges == [1.0, 2.0]
    assert base.bin_proportions == pytest.approx([0.9, 0.08, 0.02])


def test_numeric_baseline_model_rejects_inconsistent_bins():
    with pytest.raises(ValidationError, match="one more entry"):
        NumericBaseline(column="x", count=1, missing=0, mean=1, std=0, min=1, max=1, quantiles={},
                        bin_edges=[1.0, 2.0], bin_proportions=[1.0])
    with pytest.raises(ValidationError, match="ascending"):
        NumericBaseline(column="x", count=1, missing=0, mean=1, std=0, min=1, max=1, quantiles={},
                        bin_edges=[2.0, 1.0], bin_proportions=[0.5, 0.25, 0.25])


def test_metrics_threshold_and_calibration_on_known_scores():
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    m = metrics(y, scores, 0.5)
    assert m.auc == pytest.approx(0.75) and m.precision == 1.0 and m.recall == 0.5
    assert choose_threshold(y, scores) == pytest.approx(0.35)
    cal = calibration(y, scores, bins=2)
    assert [b.count for b in cal.bins] == [3, 1]


def test_bias_of_a_parity_and_a_biased_predictor():
    groups = pd.Series(["m"] * 100 + ["f"] * 100)
    y = np.array([1, 0] * 100)
    fair = facet_bias("gender", groups, y, np.array([1, 0] * 100), guarded=True)
    assert fair.disparate_impact == pytest.approx(1.0) and fair.difference_in_positive_proportions == 0
    biased = facet_bias("gender", groups, y, np.array([1] * 50 + [0] * 50 + [1] * 5 + [0] * 95), guarded=True)
    assert biased.disparate_impact == pytest.approx(0.1)
    assert biased.difference_in_positive_proportions == pytest.approx(0.45)
    assert {g.group: g.selection_rate for g in biased.groups} == {"f": 0.05, "m": 0.5}
