"""Paired (ground-truth) tests: looked at once at the end, at every poll, or replaced by an anytime-valid test.

Labels accrue over a shadow test (`--looks` polls, `--step` more labeled rows each). Every decision is the real
`functions.stats.paired.PairedReport.evidence` (McNemar mid-p + Tango's interval for accuracy, DeLong for AUC)
on the rows labeled so far; the candidate anytime-valid replacement for McNemar is a beta mixture on the
discordant pairs (b ~ Binomial(b + c, 1/2) under "equally accurate"; Robbins' mixture, an exact test
martingale: `functions.stats.periods.proportion_cs`'s mixture), REJECT when its e-value reaches 1/paired_alpha
with b > c. Reported per case:

- `every poll`: REJECT at any look (the paired tests re-run at every poll, as before issue 13 §7);
- `one look`: REJECT / PROMOTE at the last look only (what `evidence.assess(final=True)` does now);
- `anytime McNemar`: REJECT at any look by the mixture e-value (accuracy only: DeLong has no such form here).

    .venv/bin/python bench/paired_sim.py [--sims 200] [--looks 20] [--step 50] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from functions.stats.paired import PairedAccuracy, PairedReport, delong_paired, mcnemar
from functions.stats.periods import _log_beta_mixture
from functions.stats.verdict import Decision, VerdictPolicy

POLICY = VerdictPolicy()


def rows(n: int, rng: np.random.Generator, shadow_noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n labeled rows (11 % positives, as Bank Marketing): production's and the shadow's scores. Both see the
    same latent signal; the shadow adds its own noise (shadow_noise = 0.35 as production: equal models)."""
    y = (rng.random(n) < 0.11).astype(int)
    z = rng.normal(0.0, 1.0, n) + 1.6 * y - 2.6
    prod = 1 / (1 + np.exp(-(z + rng.normal(0.0, 0.35, n))))
    shadow = 1 / (1 + np.exp(-(z + rng.normal(0.0, shadow_noise, n))))
    return y, prod, shadow


def report(y: np.ndarray, prod: np.ndarray, shadow: np.ndarray) -> PairedReport:
    right_p, right_s = (prod > 0.5) == (y == 1), (shadow > 0.5) == (y == 1)
    b, c = int(np.sum(right_p & ~right_s)), int(np.sum(~right_p & right_s))
    p, mid = mcnemar(b, c)
    n = len(y)
    auc = delong_paired(prod.tolist(), shadow.tolist(), y.tolist(), POLICY.paired_alpha) if 0 < y.sum() < n else None
    return PairedReport(
        production_records=n, shadow_records=n, matched_requests=n, pairs=n, sampled=False, threshold=0.5,
        agreement=float(np.mean((prod > 0.5) == (shadow > 0.5))), score_difference=None, labeled=n,
        accuracy=PairedAccuracy(production=float(right_p.mean()), shadow=float(right_s.mean()),
                                production_only_correct=b, shadow_only_correct=c, p_value=p, mid_p=mid),
        auc=auc,
    )


def anytime_mcnemar(b: int, c: int, alpha: float) -> bool:
    """REJECT by the beta-mixture e-value on the discordant pairs (valid at every look), shadow worse (b > c)."""
    return b > c and _log_beta_mixture(b, b + c, 0.5, 10.0, 10.0) >= math.log(1 / alpha)


def decision(r: PairedReport) -> Decision:
    ev = r.evidence(POLICY)
    if any(m.decision is Decision.REJECT for m in ev):
        return Decision.REJECT
    return Decision.PROMOTE if all(m.decision is Decision.PROMOTE for m in ev) else Decision.CONTINUE


def run(shadow_noise: float, sims: int, looks: int, step: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    out = {"every": 0, "one_reject": 0, "one_promote": 0, "anytime": 0}
    anytime_n: list[int] = []
    for _ in range(sims):
        y, prod, shadow = rows(looks * step, rng, shadow_noise)
        rejected = anytime_hit = False
        for k in range(1, looks + 1):
            n = k * step
            r = report(y[:n], prod[:n], shadow[:n])
            d = decision(r)
            rejected |= d is Decision.REJECT
            acc = r.accuracy
            assert acc is not None
            if not anytime_hit and n >= POLICY.min_labeled and anytime_mcnemar(
                acc.production_only_correct, acc.shadow_only_correct, POLICY.paired_alpha
            ):
                anytime_hit = True
                anytime_n.append(n)
            if k == looks:
                out["one_reject"] += d is Decision.REJECT
                out["one_promote"] += d is Decision.PROMOTE
        out["every"] += rejected
        out["anytime"] += anytime_hit
    res = {k: v / sims for k, v in out.items()}
    res["anytime_median_rows"] = float(np.median(anytime_n)) if anytime_n else float("nan")
    return res


def truth(shadow_noise: float) -> tuple[float, float]:
    """(accuracy loss, AUC loss) of the shadow on 400,000 rows."""
    y, prod, shadow = rows(400_000, np.random.default_rng(0), shadow_noise)
    acc = np.mean((prod > 0.5) == (y == 1)) - np.mean((shadow > 0.5) == (y == 1))

    def auc(s: np.ndarray) -> float:
        order = np.argsort(s)
        ranks = np.empty(len(s))
        ranks[order] = np.arange(1, len(s) + 1)
        m = y.sum()
        return (ranks[y == 1].sum() - m * (m + 1) / 2) / (m * (len(y) - m))

    return float(acc), auc(prod) - auc(shadow)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--looks", type=int, default=20)
    ap.add_argument("--step", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    t0 = time.time()
    se = lambda p: math.sqrt(max(p * (1 - p), 1 / args.sims) / args.sims)  # noqa: E731
    print(f"{args.looks} looks, {args.step} more labeled rows each (up to {args.looks * args.step}); "
          f"paired_alpha {POLICY.paired_alpha}; {args.sims} sims; +- 1 MC SE")
    print("| shadow | accuracy loss | AUC loss | REJECT, every poll | REJECT, one look | PROMOTE, one look "
          "| REJECT, anytime McNemar (median rows) |")
    print("|---|---|---|---|---|---|---|")
    for name, noise in (("equal", 0.35), ("noisier, x1.7", 0.6), ("noisier, x2.3", 0.8), ("noisier, x2.9", 1.0)):
        acc, auc = truth(noise)
        r = run(noise, args.sims, args.looks, args.step, args.seed)
        cells = [f"{100 * r[k]:.1f} ± {100 * se(r[k]):.1f} %" for k in ("every", "one_reject", "one_promote",
                                                                         "anytime")]
        cells[-1] += f" ({r['anytime_median_rows']:.0f})"
        print(f"| {name} | {100 * acc:+.2f} pp | {auc:+.4f} | " + " | ".join(cells) + " |")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
