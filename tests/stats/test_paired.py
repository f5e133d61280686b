import math

import numpy as np
import pytest
from scipy import stats

from functions.capture import capture_line, ground_truth_line, read_capture_lines, read_ground_truth_lines
from functions.stats.paired import auc, compare, delong_paired, mcnemar, midranks, quantile
from functions.stats.verdict import Decision, VariantSample, VerdictPolicy, decide


def reference_delong(a, b, y):
    """O(n²) DeLong with explicit placement values (numpy), to check the fast midrank version."""
    a, b, y = map(np.asarray, (a, b, y))

    def comps(s):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    (aa, xa, ya), (ab, xb, yb) = comps(a), comps(b)
    s10, s01 = np.cov(np.vstack([xa, xb])), np.cov(np.vstack([ya, yb]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / len(xa) + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / len(ya)
    return aa, ab, math.sqrt(var)


def test_midranks_and_quantile():
    assert midranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]
    values = sorted(np.random.default_rng(0).normal(size=101).tolist())
    for q in (0.05, 0.5, 0.95):
        assert quantile(values, q) == pytest.approx(np.quantile(values, q))


def test_auc_and_delong_against_references():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    a = np.round(y + rng.normal(0, 1.2, 400), 1)  # rounding makes ties
    b = np.round(y + rng.normal(0, 1.5, 400), 1)
    u = stats.mannwhitneyu(a[y == 1], a[y == 0]).statistic  # AUC = U / (m n)
    assert auc(a.tolist(), y.tolist()) == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), rel=1e-12)
    res = delong_paired(a.tolist(), b.tolist(), y.tolist())
    ra, rb, se = reference_delong(a, b, y)
    assert (res.production, res.shadow) == pytest.approx((ra, rb), rel=1e-12)
    assert res.standard_error == pytest.approx(se, rel=1e-9)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs((rb - ra) / se)), rel=1e-9)
    with pytest.raises(ValueError, match="both positive and negative"):
        auc([0.1, 0.2], [1, 1])


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 9), (10, 10), (25, 9), (1, 40)])
def test_mcnemar_against_scipy_binomtest(b, c):
    exact, mid = mcnemar(b, c)
    if b + c:
        ref = stats.binomtest(min(b, c), b + c, 0.5).pvalue
        assert exact == pytest.approx(ref, rel=1e-9)
        k, n = min(b, c), b + c
        assert mid == pytest.approx(min(1.0, 2 * stats.binom.cdf(k, n, 0.5) - stats.binom.pmf(k, n, 0.5)), rel=1e-9)
    else:
        assert (exact, mid) == (1.0, 1.0)


def synthetic_capture(n: int, seed: int = 11):
    """Production and a subtly worse shadow: same rate of positives, same (zero) errors, lower AUC."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(signal - 2)))).astype(int)
    good = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.4, n) - 2)))
    worse = 1 / (1 + np.exp(-(signal + rng.normal(0, 1.4, n) - 2)))
    prod = [capture_line(f"e-p{i}", f"{i},1", f"{good[i]:.6f}", inference_id=f"r{i}") for i in range(n)]
    # the shadow sees a 70 % sample of the requests, in another order
    idx = rng.permutation(n)[: int(0.7 * n)]
    shadow = [capture_line(f"e-s{i}", f"{i},1", f"{worse[i]:.6f}", inference_id=f"r{i}") for i in idx]
    truth = [ground_truth_line(f"r{i}", int(y[i])) for i in range(n)]
    return prod, shadow, truth


def test_subtly_worse_model_is_caught_only_through_ground_truth_pairing():
    prod, shadow, truth = synthetic_capture(3000)
    without = compare(read_capture_lines(prod), read_capture_lines(shadow))
    assert without.pairs == 2100 and without.labeled == 0 and without.auc is None
    assert without.agreement > 0.85  # the predicted labels mostly agree: eyeballing says fine
    report = compare(read_capture_lines(prod), read_capture_lines(shadow), read_ground_truth_lines(truth))
    assert report.labeled == 2100 and report.auc.shadow < report.auc.production - 0.02
    evidence = report.evidence()
    auc_ev = next(e for e in evidence if e.metric == "paired_auc")
    assert auc_ev.decision is Decision.REJECT and auc_ev.p_value < 0.05
    # CloudWatch-level counts are identical (no errors, same latency): alone they would promote
    same = VariantSample(name="AllTraffic", requests=10_000, errors=0)
    policy = VerdictPolicy(require_latency=False)
    assert decide(same, same.model_copy(update={"name": "Shadow"}), policy).decision is Decision.PROMOTE
    v = decide(same, same.model_copy(update={"name": "Shadow"}), policy, paired=evidence, final=True)
    assert v.decision is Decision.REJECT and "AUC" in v.explanation


def test_equal_models_pass_the_paired_tests():
    prod, _, truth = synthetic_capture(3000)
    shadow = [line.replace('"e-p', '"e-s') for line in prod]
    report = compare(read_capture_lines(prod), read_capture_lines(shadow), read_ground_truth_lines(truth))
    assert report.agreement == 1.0 and report.score_difference.max_abs == 0.0
    assert all(e.decision is Decision.PROMOTE for e in report.evidence())


def test_join_is_bounded_and_consistent_under_sampling():
    prod, shadow, truth = synthetic_capture(5000)
    report = compare(read_capture_lines(prod), read_capture_lines(shadow), read_ground_truth_lines(truth), max_pairs=500)
    assert report.sampled and 500 <= report.pairs <= 750
    assert report.labeled == report.pairs  # the same ids survive on both sides and in the ground truth
    again = compare(read_capture_lines(prod), read_capture_lines(shadow), read_ground_truth_lines(truth), max_pairs=500)
    assert again == report  # seeded
    with pytest.raises(ValueError):
        compare([], [], threshold=1.0)


# ---- audit §3 #8, #9 -----------------------------------------------------------------------------------


def test_tango_interval_is_never_zero_width_and_matches_its_score_equation():
    from functions.stats.paired import tango_interval

    lo, hi = tango_interval(0, 0, 50, 0.05)
    z2 = 1.959963984540054**2
    assert hi == pytest.approx(z2 / (50 + z2), rel=1e-6) and lo == pytest.approx(-hi, rel=1e-6)
    lo, hi = tango_interval(10, 2, 200, 0.05)
    assert 0 < lo < 0.04 < hi < 0.1


def test_paired_accuracy_promote_rate_at_small_n_is_within_alpha():
    """Shadow 2.2 pp less accurate (2.2x the margin): the Wald CI PROMOTED 16.8 % at n = 50."""
    from functions.stats.paired import PairedAccuracy, PairedReport

    rng = np.random.default_rng(8)
    policy = VerdictPolicy()
    for n in (50, 100, 400):
        promoted = 0
        for _ in range(1000):
            cells = rng.multinomial(n, [0.028, 0.006, 0.966])  # production only right, shadow only right, same
            b, c = int(cells[0]), int(cells[1])
            acc = PairedAccuracy(production=0.9, shadow=0.9 - (b - c) / n, production_only_correct=b,
                                 shadow_only_correct=c, p_value=mcnemar(b, c)[0], mid_p=mcnemar(b, c)[1])
            report = PairedReport(production_records=n, shadow_records=n, matched_requests=n, pairs=n, sampled=False,
                                  threshold=0.5, agreement=None, score_difference=None, labeled=n, accuracy=acc, auc=None)
            promoted += report.evidence(policy)[0].decision is Decision.PROMOTE
        assert promoted / 1000 <= 0.05, n


def test_each_model_is_scored_at_its_own_threshold():
    rng = np.random.default_rng(9)
    n = 400
    y = rng.integers(0, 2, n)
    prod = np.clip(0.3 + 0.2 * (2 * y - 1) + rng.normal(0, 0.05, n), 0.01, 0.99)  # calibrated around 0.3
    shad = np.clip(0.5 + 0.2 * (2 * y - 1) + rng.normal(0, 0.05, n), 0.01, 0.99)  # around 0.5
    p_lines = [capture_line(f"p{i}", "1", f"{prod[i]:.4f}", inference_id=f"r{i}") for i in range(n)]
    s_lines = [capture_line(f"s{i}", "1", f"{shad[i]:.4f}", inference_id=f"r{i}") for i in range(n)]
    t_lines = [ground_truth_line(f"r{i}", int(y[i])) for i in range(n)]
    shared = compare(read_capture_lines(p_lines), read_capture_lines(s_lines), read_ground_truth_lines(t_lines),
                     threshold=0.5)
    own = compare(read_capture_lines(p_lines), read_capture_lines(s_lines), read_ground_truth_lines(t_lines),
                  threshold=0.5, production_threshold=0.3)
    assert shared.accuracy.production < 0.8  # production judged at the shadow's threshold: wrongly bad
    assert own.accuracy.production > 0.97 and own.agreement > 0.97 and own.production_threshold == 0.3
