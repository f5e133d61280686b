"""Training quality and speed: tuned AUC on Bank Marketing with and without `duration`, tuning wall time,
the time to build every scenario model, and single-row latency of the served models.

    .venv/bin/python bench/training_quality.py [--trials 30] [--seed 42] [--build-trials 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.data import load_bank
from training.evaluate import metrics
from training.package import load_model_tarball
from training.prepare import prepare
from training.scenarios import ALL_MODELS, BuildOptions, build_models
from training.tune import tune


def tuned_auc(with_duration: bool, trials: int, seed: int) -> None:
    prepared = prepare(load_bank(with_duration=with_duration), seed=seed)
    start, cpu = time.perf_counter(), time.process_time()
    models = tune(prepared, trials=trials, seed=seed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    for m in models:
        scores = m.booster.predict(xgb.DMatrix(prepared["test"].X))
        test = metrics(prepared["test"].y, scores, 0.5)
        print(f"  duration={'yes' if with_duration else 'no '} rank {m.rank}: validation AUC {m.validation_auc:.4f}"
              f"  test AUC {test.auc:.4f}  trees {m.best_iteration + 1}  max_depth {m.hyperparameters['max_depth']}")
    print(f"  tuning: {seconds:.1f} s wall, {cpu:.1f} s CPU (both threads) for {trials} trials "
          f"({models[0].extra['pruned']} pruned); load average before: {os.getloadavg()[0]:.1f}")


def single_row_ms(booster: xgb.Booster, X: np.ndarray, n: int = 300) -> tuple[float, float]:
    """(median, best) single-row predict latency in ms, nthread=1 as the container; best resists a busy machine."""
    times = []
    for i in range(n):
        row = X[i % len(X) : i % len(X) + 1]
        start = time.perf_counter()
        booster.predict(xgb.DMatrix(row), validate_features=False)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000), float(np.min(times) * 1000)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--build-trials", type=int, default=5)
    a = p.parse_args()
    print(f"machine: {os.cpu_count()} cores, xgboost {xgb.__version__}, nthread=2, hist")
    print(f"Optuna, {a.trials} trials, seed {a.seed}:")
    tuned_auc(False, a.trials, a.seed)
    tuned_auc(True, a.trials, a.seed)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "models"
        start, cpu = time.perf_counter(), time.process_time()
        evs = build_models(out, options=BuildOptions(trials=a.build_trials, seed=a.seed))
        print(f"build all {len(ALL_MODELS)} models (--trials {a.build_trials}): {time.perf_counter() - start:.1f} s wall, "
              f"{time.process_time() - cpu:.1f} s CPU")
        start = time.perf_counter()
        build_models(out, options=BuildOptions(trials=a.build_trials, seed=a.seed), reuse=True)
        print(f"rebuild with --reuse: {time.perf_counter() - start:.2f} s")
        X = prepare(load_bank(), seed=a.seed)["holdout"].X
        for name in ALL_MODELS:
            ev = evs[name]
            bias = ", ".join(f"{b.facet} DI {b.disparate_impact:.2f}{'*' if b.guarded else ''}" for b in ev.bias)
            try:
                [booster] = load_model_tarball(out / name / "model.tar.gz")
                median, fastest = single_row_ms(booster, X if name != "biased" else
                                                np.zeros((1, booster.num_features())))
                latency = f"median {median:.2f} ms, best {fastest:.2f} ms, {len(booster.get_dump())} trees"
            except Exception as e:
                latency = f"fails to load ({type(e).__name__})"
            print(f"  {name:16s} test AUC {ev.metrics.auc:.4f}  F1 {ev.metrics.f1:.3f}  {bias:28s} "
                  f"single-row predict {latency}")


if __name__ == "__main__":
    main()
