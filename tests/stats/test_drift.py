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


# ---- audit §3 #11, #12: calibrated to n and to the number of features ----------------------------------


def _same_distribution_alarm_rate(baseline, columns, n: int, sims: int, seed: int, policy=None) -> float:
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(sims):
        rows = sample_rows(rng, n)
        scores = 1 / (1 + np.exp(-(rng.normal(0, np.hypot(1.5, 0.4), n) - 2)))
        report = drift.check(baseline, as_csv_rows(rows), columns=columns, scores=scores.tolist(), policy=policy)
        alarms += report.drifted
    return alarms / sims


@pytest.mark.parametrize("n", [50, 100, 200])
def test_same_distribution_false_alarms_are_within_five_percent(baseline, columns, n):
    """Fixed PSI > 0.2 flagged same-distribution traffic 99 % at n = 50 (audit); now <= 5 % at every n."""
    policy = drift.DriftPolicy(min_rows=50)
    assert _same_distribution_alarm_rate(baseline, columns, n, 150, n, policy) <= 0.05


def test_an_empty_bin_no_longer_explodes_psi():
    """20 bins of 5 %, 60 rows from the same distribution, one bin happens to be empty."""
    counts = [0, 4, 5] + [3] * 17
    shares = [c / 60 for c in counts]
    assert drift.psi([0.05] * 20, shares) > 0.3  # the 1e-4 floor: "major" drift out of nothing
    _g, df, p, smoothed = drift.g_test([0.05] * 20, counts, 60, 10_000, 5.0, True)
    assert df == 9 and p > 0.5 and smoothed < 0.05  # merged to expected counts >= 5, smoothed shares


def test_sparse_categories_are_merged():
    e, c = drift.merge_cells([0.5, 0.45, 0.03, 0.02], [52, 40, 5, 3], 100, 5.0, adjacent=False)
    assert len(e) == 3 and sum(e) == pytest.approx(1.0) and sum(c) == 100
    report = drift.categorical_drift("x", {"a": 0.5, "b": 0.45, "c": 0.03, "d": 0.02}, {"a": 52, "b": 40, "c": 5, "d": 3},
                                     0, 0.0, drift.DriftPolicy(), baseline_n=1000)
    assert report.chi2_df == 2 and report.status == "stable"
