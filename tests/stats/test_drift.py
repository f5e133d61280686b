import math

import numpy as np
import pytest
from stats_synthetic import sample_rows

from functions.capture import capture_line, read_capture_lines
from functions.stats import drift


def as_csv_rows(rows: np.ndarray) -> list[list[str]]:
    return [[f"{v:g}" for v in row] for row in rows]


def test_psi_known_value():
    # hand computation: (0.3-0.5)ln(0.3/0.5) + (0.7-0.5)ln(0.7/0.5)
    expected = -0.2 * math.log(0.6) + 0.2 * math.log(1.4)
    assert drift.psi([0.5, 0.5], [0.3, 0.7]) == pytest.approx(expected)
    assert drift.psi([0.2, 0.8], [0.2, 0.8]) == 0.0
    with pytest.raises(ValueError):
        drift.psi([1.0], [0.5, 0.5])


def test_same_distribution_is_stable(baseline, columns):
    rows = sample_rows(np.random.default_rng(1), 3000)
    report = drift.check(baseline, as_csv_rows(rows), columns=columns)
    assert report.rows == 3000 and not report.drifted and report.top == []
    assert all(f.status == "stable" for f in report.features)
    assert "no drift" in report.explanation


def test_shifted_feature_is_flagged_and_unshifted_ones_are_not(baseline, columns):
    rows = sample_rows(np.random.default_rng(2), 3000, age_shift=8.0)
    report = drift.check(baseline, as_csv_rows(rows), columns=columns)
    assert report.drifted and report.top == ["age"]
    age = report.features[0]
    assert age.feature == "age" and age.status == "major" and age.psi > 0.2
    assert age.ks_statistic > 0.2 and age.ks_p_value < 1e-6
    others = {f.feature: f for f in report.features[1:]}
    assert others["balance"].status == "stable" and others["marital"].status == "stable"
    assert others["marital"].chi2_p_value > 0.001


def test_categorical_shift_uses_chi_square(baseline, columns):
    rows = sample_rows(np.random.default_rng(3), 2000, marital={"married": 0.3, "single": 0.6, "divorced": 0.1})
    report = drift.check(baseline, as_csv_rows(rows), columns=columns)
    marital = next(f for f in report.features if f.feature == "marital")
    assert marital.status == "major" and marital.chi2_df == 2 and marital.chi2_p_value < 1e-10
    assert marital.largest_shift.startswith(("married", "single"))


def test_too_few_rows_is_insufficient_and_malformed_rows_are_skipped(baseline, columns):
    rows = [*as_csv_rows(sample_rows(np.random.default_rng(4), 20, age_shift=30)), ["x"] * 5, ["1", "2"]]
    report = drift.check(baseline, rows, columns=columns)
    assert report.rows == 20 and not report.drifted
    assert all(f.status == "insufficient" for f in report.features)


def test_prediction_drift_from_capture_records(baseline, columns):
    rng = np.random.default_rng(5)
    rows = sample_rows(rng, 1000)
    scores = rng.beta(5, 3, 1000)  # far above the baseline's Beta(2, 8)
    lines = [capture_line(f"e{i}", ",".join(f"{v:g}" for v in r), f"{s:.5f}") for i, (r, s) in enumerate(zip(rows, scores, strict=True))]
    report = drift.check_records(baseline, read_capture_lines(lines), columns=columns)
    assert report.prediction.status == "major" and report.drifted
    assert all(f.status == "stable" for f in report.features)


def test_baseline_columns_must_match_the_endpoint(baseline):
    with pytest.raises(ValueError, match="not an endpoint column"):
        drift.check(baseline, [], columns=["age"])
    with pytest.raises(ValueError, match="column order"):
        drift.check(baseline, [])
