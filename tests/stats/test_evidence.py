import numpy as np
from stats_synthetic import sample_rows

from functions.capture import capture_line, ground_truth_line, read_capture_lines, read_ground_truth_lines
from functions.stats.evidence import assess
from functions.stats.verdict import Decision, LatencySummary, VariantSample


def counts(name: str, n: int = 8000, errors: int = 40) -> VariantSample:
    lat = LatencySummary.from_values([20_000.0 * (1 + 0.01 * (i % 7)) for i in range(n)])
    return VariantSample(name=name, requests=n, errors=errors, latency=lat)


def capture(n: int, *, shadow_noise: float, age_shift: float = 0.0, seed: int = 3, junk: int = 0):
    rng = np.random.default_rng(seed)
    rows = sample_rows(rng, n, age_shift=age_shift)
    signal = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(signal - 2)))).astype(int)
    prod_s = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.4, n) - 2)))
    if shadow_noise:
        shad_s = 1 / (1 + np.exp(-(signal + rng.normal(0, shadow_noise, n) - 2)))
    else:  # the same model retrained: scores jitter a little
        shad_s = np.clip(prod_s + rng.normal(0, 0.002, n), 0, 1)
    csv = [",".join(f"{v:g}" for v in r) if i >= junk else "oops" for i, r in enumerate(rows)]
    prod = [capture_line(f"p{i}", csv[i], f"{prod_s[i]:.6f}", inference_id=f"r{i}") for i in range(n)]
    shad = [capture_line(f"s{i}", csv[i], f"{shad_s[i]:.6f}", inference_id=f"r{i}") for i in range(n)]
    truth = [ground_truth_line(f"r{i}", int(y[i])) for i in range(n)]
    return read_capture_lines(prod), read_capture_lines(shad), read_ground_truth_lines(truth)


def test_good_shadow_is_promoted_with_all_evidence(evaluation):
    prod, shad, truth = capture(1500, shadow_noise=0)
    ev = assess(counts("AllTraffic"), counts("Shadow"), final=True, production_capture=prod, shadow_capture=shad,
                ground_truth=truth, evaluation=evaluation)
    assert ev.verdict.decision is Decision.PROMOTE and ev.flags == []
    assert ev.paired.labeled == 1500 and ev.data_quality.rows == 1500 and not ev.drift.drifted
    assert {m.metric for m in ev.verdict.metrics} >= {"error_rate", "log_latency", "paired_auc", "paired_accuracy"}


def test_subtly_worse_shadow_is_rejected_at_the_end_only(evaluation):
    prod, shad, truth = capture(3000, shadow_noise=1.4)
    ev = assess(counts("AllTraffic"), counts("Shadow"), final=True, production_capture=prod, shadow_capture=shad,
                ground_truth=truth, evaluation=evaluation)
    assert ev.verdict.decision is Decision.REJECT and "AUC" in ev.verdict.explanation
    prod, shad, truth = capture(3000, shadow_noise=1.4)
    mid = assess(counts("AllTraffic"), counts("Shadow"), production_capture=prod, shadow_capture=shad,
                 ground_truth=truth, evaluation=evaluation)
    # before the end: reported, not acted on, and no early PROMOTE that would skip (or repeat) the paired look
    assert mid.verdict.decision is Decision.CONTINUE and mid.paired.auc is not None
    assert "once, at the end" in mid.verdict.blocked_by
    prod, shad, _ = capture(3000, shadow_noise=1.4)
    no_labels = assess(counts("AllTraffic"), counts("Shadow"), production_capture=prod, shadow_capture=shad,
                       evaluation=evaluation)
    assert no_labels.verdict.decision is Decision.PROMOTE  # without ground truth nothing waits for the end


def test_junk_traffic_and_drift_are_flagged(evaluation):
    prod, shad, _ = capture(1000, shadow_noise=0, age_shift=10, junk=700)
    ev = assess(counts("AllTraffic"), counts("Shadow"), final=True, production_capture=prod, shadow_capture=shad,
                evaluation=evaluation)
    assert ev.verdict.decision is Decision.INCONCLUSIVE and "malformed" in ev.verdict.blocked_by
    assert ev.data_quality.malformed_rows == 700 and "DATA_QUALITY" in ev.flags
    assert ev.drift.top == ["age"] and "DRIFT" in ev.flags


def test_counts_alone_still_work():
    ev = assess(counts("AllTraffic"), counts("Shadow", errors=400))
    assert ev.verdict.decision is Decision.REJECT and ev.paired is None and ev.drift is None
