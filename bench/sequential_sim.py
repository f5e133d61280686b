"""Simulated shadow tests: the always-valid sequential verdict vs a fixed-horizon test vs naive peeking.

Each simulated test mirrors the same traffic to production and shadow (equal requests per arm), polls every
`POLL` requests per arm with cumulative counts, and stops at the first REJECT/PROMOTE or at `HORIZON`.
Data are generated with numpy; every decision of the sequential method is the pure-Python
`functions.stats.verdict.decide` with the default `VerdictPolicy` (alpha = 0.05).

Baselines at the same alpha:
- fixed horizon: one test after n requests per arm, n chosen for 80 % power at the minimum regression worth
  catching (the policy's margins: +0.5 pp errors on 0.5 %, +10 % latency); one-sided z at level alpha/2
  per metric (the "worse" half of a two-sided test), like the sequential REJECT;
- naive peeking: that same z test evaluated at every poll, stopping at the first "significant" result.

It also times the streaming capture parser and the bounded paired join on a synthetic capture
(`--capture-records`, 0 to skip).

    .venv/bin/python bench/sequential_sim.py [--sims 1000] [--workers 2] [--capture-records 100000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from functions.capture import capture_line, ground_truth_line, read_capture_lines, read_ground_truth_lines
from functions.stats.distributions import normal_ppf
from functions.stats.paired import compare
from functions.stats.verdict import Decision, LatencySummary, VariantSample, VerdictPolicy, decide

POLL = 50  # requests per arm between polls
HORIZON = 20_000  # requests per arm before the test is called INCONCLUSIVE
BASE_ERROR = 0.005
LOG_MU, LOG_SIGMA = math.log(20_000), 0.5  # ModelLatency ~ lognormal, median 20 ms
POLICY = VerdictPolicy()
ALPHA = POLICY.alpha
Z = normal_ppf(1 - ALPHA / 2)
Z_POWER = normal_ppf(0.80)


@dataclass(frozen=True)
class Case:
    name: str
    shadow_error: float
    latency_factor: float  # multiplies every latency: p99 moves by the same factor

    @property
    def metric(self) -> str:
        return "log_latency" if self.latency_factor != 1.0 else "error_rate"


CASES = [
    Case("equal models (0.5% errors)", BASE_ERROR, 1.0),
    Case("errors 5% vs 0.5%", 0.05, 1.0),
    Case("errors 1% vs 0.5% (at margin)", 0.01, 1.0),
    Case("p99 latency +20%", BASE_ERROR, 1.2),
    Case("p99 latency +50%", BASE_ERROR, 1.5),
]


def fixed_horizon_n() -> dict[str, int]:
    """Per-arm n for 80 % power at the margins (two-sided alpha), for each metric."""
    p1, p2 = BASE_ERROR, BASE_ERROR + POLICY.error_margin
    pbar = (p1 + p2) / 2
    n_err = (Z * math.sqrt(2 * pbar * (1 - pbar)) + Z_POWER * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2
    delta = math.log1p(POLICY.latency_margin)
    n_lat = 2 * LOG_SIGMA**2 * (Z + Z_POWER) ** 2 / delta**2
    return {"error_rate": math.ceil(n_err), "log_latency": math.ceil(n_lat)}


def _z_worse(e_a, n_a, e_b, n_b, s_a, ss_a, s_b, ss_b) -> np.ndarray:
    """Per-metric z statistics ('b worse' positive): pooled two-proportion z, Welch z on log-latency."""
    pooled = (e_a + e_b) / (n_a + n_b)
    se = np.sqrt(np.maximum(pooled * (1 - pooled) * (1 / n_a + 1 / n_b), 1e-300))
    z_err = np.where(pooled > 0, (e_b / n_b - e_a / n_a) / se, 0.0)
    va = (ss_a - s_a**2 / n_a) / (n_a - 1)
    vb = (ss_b - s_b**2 / n_b) / (n_b - 1)
    z_lat = (s_b / n_b - s_a / n_a) / np.sqrt(va / n_a + vb / n_b)
    return np.maximum(z_err, z_lat)


def simulate(args: tuple[Case, int, int]) -> dict[str, list]:
    case, seed, sims = args
    rng = np.random.default_rng(seed)
    polls = HORIZON // POLL
    out: dict[str, list] = {"seq": [], "seq_n": [], "naive": [], "naive_n": [], "fixed": []}
    n_fixed = fixed_horizon_n()
    n_fix = max(n_fixed.values())
    for _ in range(sims):
        cum = {}
        for arm, p, factor in (("a", BASE_ERROR, 1.0), ("b", case.shadow_error, case.latency_factor)):
            errors = rng.binomial(POLL, p, polls)
            logs = rng.normal(LOG_MU + math.log(factor), LOG_SIGMA, (polls, POLL))
            cum[arm] = (np.cumsum(errors), np.cumsum(logs.sum(axis=1)), np.cumsum((logs**2).sum(axis=1)))
        # sequential: the pure-Python verdict at every poll
        decision, n_stop = Decision.CONTINUE, HORIZON
        for i in range(polls):
            n = (i + 1) * POLL
            a, b = (
                VariantSample(
                    name=name, requests=n, errors=int(cum[k][0][i]),
                    latency=LatencySummary(count=n, sum_log=float(cum[k][1][i]), sum_log_sq=float(cum[k][2][i])),
                )
                for name, k in (("AllTraffic", "a"), ("Shadow", "b"))
            )
            v = decide(a, b, POLICY, final=n == HORIZON)
            if v.decision in (Decision.REJECT, Decision.PROMOTE) or v.final:
                decision, n_stop = v.decision, n
                break
        out["seq"].append(decision.value)
        out["seq_n"].append(n_stop)
        # naive peeking and the fixed horizon: the same one-sided z (level alpha/2 per metric)
        n_polls = np.arange(1, polls + 1) * POLL
        z = _z_worse(cum["a"][0], n_polls, cum["b"][0], n_polls, cum["a"][1], cum["a"][2], cum["b"][1], cum["b"][2])
        hits = np.nonzero(z > Z)[0]
        out["naive"].append(bool(hits.size))
        out["naive_n"].append(int(n_polls[hits[0]]) if hits.size else HORIZON)
        j = n_fix // POLL - 1 + (n_fix % POLL > 0)
        out["fixed"].append(bool(z[j] > Z))
    return out


def run(sims: int, workers: int) -> list[dict]:
    rows = []
    n_fix = max(fixed_horizon_n().values())
    with ProcessPoolExecutor(workers) as pool:
        for c_i, case in enumerate(CASES):
            chunks = [(case, 1000 * c_i + w, sims // workers + (w < sims % workers)) for w in range(workers)]
            merged: dict[str, list] = {}
            for part in pool.map(simulate, chunks):
                for k, v in part.items():
                    merged.setdefault(k, []).extend(v)
            seq = merged["seq"]
            stopped = [n for d, n in zip(seq, merged["seq_n"], strict=True) if d in ("REJECT", "PROMOTE")]
            rows.append({
                "case": case.name,
                "sims": len(seq),
                "seq_reject": seq.count("REJECT") / len(seq),
                "seq_promote": seq.count("PROMOTE") / len(seq),
                "seq_undecided": 1 - (seq.count("REJECT") + seq.count("PROMOTE")) / len(seq),
                "seq_median_n": statistics.median(merged["seq_n"]),
                "seq_median_n_decided": statistics.median(stopped) if stopped else float("nan"),
                "naive_reject": sum(merged["naive"]) / len(seq),
                "naive_median_n": statistics.median(merged["naive_n"]),
                "fixed_reject": sum(merged["fixed"]) / len(seq),
                "fixed_n": n_fix,
                "fixed_n_metric": fixed_horizon_n()[case.metric],
            })
    return rows


def capture_throughput(n: int, max_pairs: int = 20_000) -> None:
    """Parse + join n production, n shadow and n ground-truth lines; time and peak Python memory."""
    import tracemalloc

    rng = np.random.default_rng(0)
    score = rng.random(n)
    row = ",".join(["41", "1", "0", "0", "1", "0.5", "3"] * 5)  # 35 columns
    prod = [capture_line(f"p{i}", row, f"{score[i]:.6f}", inference_id=f"r{i}") for i in range(n)]
    shadow = [capture_line(f"s{i}", row, f"{0.9 * score[i]:.6f}", inference_id=f"r{i}") for i in range(n)]
    truth = [ground_truth_line(f"r{i}", int(rng.random() < score[i])) for i in range(n)]
    t0 = time.perf_counter()
    report = compare(read_capture_lines(prod), read_capture_lines(shadow), read_ground_truth_lines(truth), max_pairs=max_pairs)
    seconds = time.perf_counter() - t0
    tracemalloc.start()  # a second, traced pass for the memory peak (tracing slows it down)
    compare(read_capture_lines(prod[: n // 5]), read_capture_lines(shadow[: n // 5]), read_ground_truth_lines(truth[: n // 5]), max_pairs=max_pairs)
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    print(f"capture pairing: {n:,} records/variant + {n:,} labels in {seconds:.1f} s ({3 * n / seconds:,.0f} lines/s); "
          f"max_pairs={max_pairs:,} kept {report.pairs:,} pairs (sampled={report.sampled}); "
          f"peak traced memory of a {n // 5:,}-request join = {peak:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--capture-records", type=int, default=100_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    n_fixed = fixed_horizon_n()
    rows = run(args.sims, args.workers)
    print(f"alpha={ALPHA}  poll every {POLL} requests/arm  horizon {HORIZON}/arm  sims/case={args.sims}")
    print(f"fixed horizon for 80% power at the margins: errors n={n_fixed['error_rate']}, "
          f"latency n={n_fixed['log_latency']} -> n={max(n_fixed.values())}/arm (both metrics)")
    head = (f"{'case':<28} {'seq REJECT':>10} {'seq PROMOTE':>11} {'undecided':>9} {'seq median n':>12} "
            f"{'fixed n':>7} {'fixed REJECT':>12} {'peek REJECT':>11} {'peek median n':>13} "
            f"{'fixed n (metric)':>16} {'speed-up':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        speed = r["fixed_n_metric"] / r["seq_median_n"]
        print(f"{r['case']:<28} {r['seq_reject']:>10.1%} {r['seq_promote']:>11.1%} {r['seq_undecided']:>9.1%} "
              f"{r['seq_median_n']:>12,.0f} {r['fixed_n']:>7,} {r['fixed_reject']:>12.1%} {r['naive_reject']:>11.1%} "
              f"{r['naive_median_n']:>13,.0f} {r['fixed_n_metric']:>16,} {speed:>7.1f}x")
    print("seq = always-valid verdict (functions.stats.verdict.decide); fixed n = joint fixed horizon (both metrics);")
    print("fixed n (metric) = fixed horizon for the regressing metric alone; speed-up = fixed n (metric) / seq median n")
    if args.capture_records:
        capture_throughput(args.capture_records)
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
