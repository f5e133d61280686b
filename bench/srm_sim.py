"""The LINEAR canary's sample-ratio check (`periods.srm_at_least`): validity at the null boundary and power.

Per period the new fleet gets Binomial(requests, share) requests; the null is "share >= the first step's
capacity share" (25 %). Reported: the share of runs flagged (a mismatch at any look), ± 1 MC SE.

    .venv/bin/python bench/srm_sim.py [--sims 300] [--seed 2]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from functions.stats.periods import srm_at_least

NULL = 0.25


def flagged(rate: float, share: float, periods: int, alpha: float, rng: np.random.Generator) -> bool:
    """A mismatch at any look over `periods` periods of Poisson(rate) requests."""
    rows: list[tuple[float, float]] = []
    for _ in range(periods):
        n = int(rng.poisson(rate))
        rows.append((float(rng.binomial(n, share)), float(n)))
        if srm_at_least(rows, NULL, alpha)[0]:
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"null: share >= {NULL:.0%}; {args.sims} runs per row; +- 1 MC SE")
    print("| new fleet's share | requests / period | periods | alpha | flagged |")
    print("|---|---|---|---|---|")
    for share, rate, periods, alpha in ((0.25, 60, 30, 0.05), (0.25, 600, 30, 0.05), (0.25, 600, 30, 0.001),
                                        (0.125, 60, 10, 0.001), (0.125, 600, 10, 0.001), (0.18, 60, 10, 0.001),
                                        (0.18, 600, 10, 0.001), (0.22, 6000, 10, 0.001)):
        p = sum(flagged(rate, share, periods, alpha, rng) for _ in range(args.sims)) / args.sims
        se = math.sqrt(max(p * (1 - p), 1 / args.sims) / args.sims)
        print(f"| {share:.1%} | {rate} | {periods} | {alpha} | {100 * p:.1f} ± {100 * se:.1f} % |")


if __name__ == "__main__":
    main()
