"""The verdict on the deployed data path: simulated CloudWatch periods at 1, 10 and 100 req/s.

Every decision is the real `functions.stats.verdict.decide` on `VariantSample.from_periods`, fed per-minute
SampleCount / 5XX Sum / ModelLatency Sum / TC(threshold:) counts as CloudWatch returns them
(`bench/cloudwatch_periods.py`). Polls every `--poll` minutes over a `--minutes` test. Shadow cases stop at the
first decision; canary cases keep polling and count a REJECT at any poll (a REJECT is sticky).

Reported per case and traffic level: REJECT, PROMOTE, P(inconclusive at the end), median minutes to a decision,
and the minutes a fixed-horizon test needs, sized for the ACTUAL effect (80 % power, one-sided alpha/2 on the
metric that carries the effect), at the same traffic.

    .venv/bin/python bench/deployed_sim.py [--sims 100] [--minutes 60] [--poll 5] [--rates 1,10,100] [--only NAME]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cloudwatch_periods import Scenario, cumulative, simulate
from functions.stats.distributions import normal_ppf
from functions.stats.verdict import Decision, VariantSample, VerdictPolicy, decide

ALPHA = 0.05


@dataclass
class Case:
    name: str
    scenario: Scenario
    truth: str  # "equal" (REJECT is false), "tolerated" (inside the margin: REJECT is false),
    # "worse" (beyond the margin: PROMOTE is false), "margin" (at the margin: PROMOTE is false),
    # "harm" (exactly at the harm threshold: REJECT is false, bounded by alpha / m)
    canary: bool = False
    mirrored: bool = True
    effect: str = ""  # for the fixed-horizon size: "errors", "latency", "tail"
    policy: dict | None = None  # VerdictPolicy overrides


def cases(minutes: int) -> list[Case]:
    base = Scenario(minutes=minutes, sigma=0.5, error_a=0.005)
    ramp = lambda t: 0.1 + 0.4 * min(t / minutes, 1.0)  # noqa: E731
    return [
        Case("shadow 100 %, equal", replace(base), "equal"),
        Case("shadow 5 %, equal, sigma 1", replace(base, sampling=0.05, sigma=1.0), "equal"),
        Case("shadow 5 %, 20 % slower, sigma 1", replace(base, sampling=0.05, sigma=1.0, scale_b=1.2), "worse",
             effect="latency"),
        Case("shadow 100 %, 3 % slower (tolerated)", replace(base, scale_b=1.03), "tolerated"),
        Case("shadow 100 %, errors 5 % vs 0.5 %", replace(base, error_b=0.05), "worse", effect="errors"),
        Case("shadow 100 %, tail: 2 % of requests 10x", replace(base, tail_frac=0.02, tail_mult=10.0), "worse",
             effect="tail"),
        Case("canary 10 %, errors 1.0 % vs 0.5 % (= margin)",
             replace(base, mirrored=False, share=0.1, error_b=0.010), "margin", mirrored=False, effect="errors"),
        Case("canary 25 %, equal", replace(base, mirrored=False, share=0.25), "equal", canary=True, mirrored=False),
        Case("linear 10->50 % + common drift, equal",
             replace(base, mirrored=False, share=ramp, drift=lambda t: (1 + 0.3 * t / minutes, 1 + 2 * t / minutes)),
             "equal", canary=True, mirrored=False),
        Case("canary 25 %, new fleet 20 % errors", replace(base, mirrored=False, share=0.25, error_b=0.2), "worse",
             canary=True, mirrored=False, effect="errors"),
        Case("shadow 5 %, latency x1.10 (= harm), sigma 1", replace(base, sampling=0.05, sigma=1.0, scale_b=1.10),
             "harm", canary=True),
        Case("canary 25 %, errors +0.5 pp (= harm)", replace(base, mirrored=False, share=0.25, error_b=0.010),
             "harm", canary=True, mirrored=False),
        Case("shadow 5 %, equal, sigma 1, harm 0", replace(base, sampling=0.05, sigma=1.0), "equal", canary=True,
             policy=HARM0),
        Case("linear 10->50 % + common drift, equal, harm 0",
             replace(base, mirrored=False, share=ramp, drift=lambda t: (1 + 0.3 * t / minutes, 1 + 2 * t / minutes)),
             "equal", canary=True, mirrored=False, policy=HARM0),
        Case("shadow 100 %, tail only: 10 % of requests x1.5 (share above old p99 1 -> 1.55 %, p99 +9 %)",
             replace(base, tail_frac=0.10, tail_mult=1.5), "tolerated"),
        Case("shadow 100 %, tail only: 6 % of requests x3 (share above old p99 1 -> 3.6 %, p99 +55 %)",
             replace(base, tail_frac=0.06, tail_mult=3.0), "worse", effect="tail"),
    ]


HARM0 = {"error_harm": 0.0, "latency_harm": 0.0, "tail_harm": 0.0}


def fixed_minutes(case: Case, rate: float) -> float | None:
    """Minutes a one-look test needs for 80 % power at one-sided alpha/2 on the metric with the effect, against
    the same hypothesis the sequential REJECT tests: the effect BEYOND the harm threshold (= the margin)."""
    margins = VerdictPolicy()
    sc = case.scenario
    z = normal_ppf(1 - ALPHA / 2) + normal_ppf(0.8)
    if sc.mirrored:
        per_a, per_b = rate, rate * sc.sampling
    else:
        s = sc.share(sc.minutes / 2) if callable(sc.share) else sc.share
        per_a, per_b = rate * (1 - s), rate * s
    if case.truth not in ("worse",):
        return None  # at the margin / equal: no effect to size for
    if case.effect == "errors":
        p1, p2 = sc.error_a, sc.error_b or sc.error_a
        # n_b requests with n_a = n_b per_a / per_b
        k = per_a / per_b
        n_b = z**2 * (p2 * (1 - p2) + p1 * (1 - p1) / k) / (p2 - p1 - margins.error_margin) ** 2
        return n_b / per_b / 60
    if case.effect == "latency":
        cv2 = math.exp(sc.sigma**2) - 1
        k = per_a / per_b
        n_b = z**2 * cv2 * (1 + 1 / k) / (math.log(sc.scale_b) - math.log1p(margins.latency_margin)) ** 2
        return n_b / per_b / 60
    if case.effect == "tail":
        q1 = 0.01
        q2 = 0.01 * (1 - sc.tail_frac) + sc.tail_frac * _tail_share(sc)
        k = per_a / per_b
        n_b = z**2 * (q2 * (1 - q2) + q1 * (1 - q1) / k) / (q2 - q1 - margins.tail_margin) ** 2
        return n_b / per_b / 60
    return None


def _tail_share(sc: Scenario) -> float:
    # P(lognormal * mult > production's p99)
    from functions.stats.distributions import normal_sf

    return normal_sf((math.log(sc.tail_threshold()) - sc.mu - math.log(sc.tail_mult)) / sc.sigma)


def run_case(case: Case, rate: float, sims: int, poll: int, seed: int) -> dict:
    sc = replace(case.scenario, rate=rate, _moments={})
    rng = np.random.default_rng(seed)
    policy = VerdictPolicy(**(case.policy or {}))
    steps = sc.minutes * 60 // sc.period
    rejects = promotes = rule = 0
    times: list[float] = []
    for _ in range(sims):
        a, b = simulate(sc, rng)
        decided = None
        for k in range(poll, steps + 1, poll):
            v = decide(VariantSample.from_periods("prod", cumulative(a, k)),
                       VariantSample.from_periods("new", cumulative(b, k)), policy, mirrored=case.mirrored,
                       final=k + poll > steps)
            if v.decision is Decision.REJECT and "that production answered" in v.explanation and not v.metrics:
                rule += 1  # issue 11's rule with too little data
                break
            if v.decision is Decision.REJECT and "that production answered" in v.explanation:
                rule += 1  # issue 11's rule (an INCONCLUSIVE end with unmatched shadow 5XX), not a statistical REJECT
                break
            if v.decision is Decision.REJECT or (v.decision is Decision.PROMOTE and not case.canary):
                decided = v.decision
                times.append(k * sc.period / 60)
                break
        rejects += decided is Decision.REJECT
        promotes += decided is Decision.PROMOTE
    return {
        "REJECT": rejects / sims, "PROMOTE": promotes / sims, "inconclusive": 1 - (rejects + promotes) / sims,
        "rule": rule / sims,
        "median_min": statistics.median(times) if times else None, "fixed_min": fixed_minutes(case, rate),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=100)
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--poll", type=int, default=5)
    ap.add_argument("--rates", default="1,10,100")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(f"sims={args.sims} minutes={args.minutes} poll every {args.poll} min, alpha={ALPHA}, 60-s periods")
    print("| case | truth | req/s | REJECT | PROMOTE | inconclusive (of which REJECT by the unmatched-5XX rule) "
          "| median min to decision | fixed test min (actual effect) |")
    print("|---|---|---|---|---|---|---|---|")
    t0 = time.time()
    for i, case in enumerate(cases(args.minutes)):
        if args.only and args.only not in case.name:
            continue
        for j, rate in enumerate(rates):
            r = run_case(case, rate, args.sims, args.poll, seed=1000 * i + j)
            se = lambda p: math.sqrt(max(p * (1 - p), 1e-12) / args.sims) * 100  # noqa: E731
            med = f"{r['median_min']:.0f}" if r["median_min"] is not None else "-"
            fixed = f"{r['fixed_min']:.1f}" if r["fixed_min"] is not None else "-"
            print(
                f"| {case.name}{' (canary: REJECT at any poll)' if case.canary else ''} | {case.truth} | {rate:g} | "
                f"{100 * r['REJECT']:.1f} ± {se(r['REJECT']):.1f} % | {100 * r['PROMOTE']:.1f} ± {se(r['PROMOTE']):.1f} % | "
                f"{100 * r['inconclusive']:.1f} % ({100 * r['rule']:.1f} %) | {med} | {fixed} |",
                flush=True,
            )
    print(f"elapsed {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
