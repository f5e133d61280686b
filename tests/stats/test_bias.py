import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio

from functions.evaluation import FacetBias, GroupRate
from functions.stats import bias


def test_matches_fairlearn_definitions():
    rng = np.random.default_rng(0)
    groups = rng.choice(["f", "m", "x"], size=2000, p=[0.45, 0.45, 0.1])
    scores = rng.random(2000) * np.where(groups == "f", 0.8, 1.0)
    pred = (scores >= 0.5).astype(int)
    report = bias.check(scores.tolist(), groups.tolist(), facet="gender")
    y = np.zeros(2000)  # fairlearn requires y_true; demographic parity ignores it
    assert report.demographic_parity_difference == pytest.approx(demographic_parity_difference(y, pred, sensitive_features=groups))
    assert report.demographic_parity_ratio == pytest.approx(demographic_parity_ratio(y, pred, sensitive_features=groups))
    assert report.disparate_impact == report.demographic_parity_ratio
    assert [g.group for g in report.groups] == ["f", "m", "x"] and report.rows == 2000


def test_bound_and_training_reference():
    training = FacetBias(
        facet="gender",
        groups=[GroupRate(group="f", count=10, selection_rate=0.5, base_rate=0.5), GroupRate(group="m", count=10, selection_rate=0.5, base_rate=0.5)],
        demographic_parity_difference=0.0, demographic_parity_ratio=1.0, disparate_impact=0.95,
        difference_in_positive_proportions=0.0, label_disparate_impact=1.0, label_difference_in_positive_proportions=0.0,
    )
    scores = [0.9] * 50 + [0.1] * 50 + [0.9] * 20 + [0.1] * 80
    groups = ["m"] * 100 + ["f"] * 100
    report = bias.check(scores, groups, facet="gender", training=training, max_deviation=0.2)
    assert report.disparate_impact == pytest.approx(0.4) and report.within_bound is False
    assert report.disparate_impact_change == pytest.approx(0.4 - 0.95) and "OUTSIDE" in report.explanation
    with pytest.raises(ValueError, match="two groups"):
        bias.check([0.9], ["m"], facet="gender")


def test_groups_from_one_hot_and_from_a_numeric_cut(baseline, columns):
    rows = [["25", "10", "1", "0", "0"], ["65", "10", "0", "1", "0"], ["40", "10", "0", "0", "0"], ["?", "1"]]
    assert bias.facet_groups(baseline, rows, "marital", columns=columns) == ["married", "single", None, None]
    cut = bias.NumericCut(edges=[0, 29, 59, 200], labels=["<30", "30-59", "60+"])
    assert bias.facet_groups(baseline, rows, "age", columns=columns, cut=cut) == ["<30", "60+", "30-59", None]
    assert cut.label(29) == "<30" and cut.label(29.5) == "30-59"  # right-closed like pandas.cut
    with pytest.raises(ValueError, match="not a one-hot"):
        bias.facet_groups(baseline, rows, "age", columns=columns)
