"""Local hyperparameter tuning with Optuna over the SageMaker job's search space.

TPE sampler (seeded), median pruning on the validation AUC reported every `chunk` boosting rounds, early
stopping, nthread=2 and the hist tree method. Returns the best and a distinct runner-up model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import xgboost as xgb

from training.prepare import Prepared
from training.search_space import EARLY_STOPPING_ROUNDS, EVAL_METRIC, OBJECTIVE, SEARCH_SPACE

NTHREAD = 2


@dataclass
class TunedModel:
    booster: xgb.Booster  # sliced to the best iteration: the container predicts with every tree it loads
    hyperparameters: dict[str, Any]
    validation_auc: float
    best_iteration: int
    method: str = "optuna"
    rank: int | None = None
    trial_number: int | None = None
    trials: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class _ReportAndPrune(xgb.callback.TrainingCallback):
    """Reports the validation AUC to Optuna every `chunk` rounds and stops pruned trials."""

    def __init__(self, trial: optuna.Trial, chunk: int) -> None:
        self.trial, self.chunk = trial, chunk

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        if (epoch + 1) % self.chunk == 0:
            self.trial.report(evals_log["validation"][EVAL_METRIC][-1], step=epoch + 1)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at round {epoch + 1}")
        return False


def xgb_params(hyperparameters: dict[str, Any], seed: int, nthread: int = NTHREAD) -> dict[str, Any]:
    params = {k: v for k, v in hyperparameters.items() if k != "num_round"}
    return {"objective": OBJECTIVE, "eval_metric": EVAL_METRIC, "tree_method": "hist", "nthread": nthread,
            "seed": seed, **params}


def matrices(prepared: Prepared, train: tuple[np.ndarray, np.ndarray] | None = None,
             max_bin: int = 256) -> tuple[xgb.DMatrix, xgb.DMatrix]:
    """Histogram-ready train and validation matrices (built once, shared by every trial)."""
    X, y = train if train is not None else (prepared["train"].X, prepared["train"].y)
    dtrain = xgb.QuantileDMatrix(X, label=y, max_bin=max_bin, nthread=NTHREAD)
    dval = xgb.QuantileDMatrix(prepared["validation"].X, label=prepared["validation"].y, ref=dtrain, max_bin=max_bin,
                               nthread=NTHREAD)
    return dtrain, dval


def train_booster(prepared: Prepared, hyperparameters: dict[str, Any], *, seed: int,
                  callbacks: list[xgb.callback.TrainingCallback] | None = None,
                  train: tuple[np.ndarray, np.ndarray] | None = None,
                  early_stopping: bool = True,
                  data: tuple[xgb.DMatrix, xgb.DMatrix] | None = None) -> tuple[xgb.Booster, float, int]:
    """Train on train (or the given X, y), early-stop on validation; returns (sliced booster, val AUC, best it)."""
    dtrain, dval = data or matrices(prepared, train, max_bin=int(hyperparameters.get("max_bin", 256)))
    evals_log: dict = {}
    booster = xgb.train(xgb_params(hyperparameters, seed), dtrain, num_boost_round=int(hyperparameters["num_round"]),
                        evals=[(dval, "validation")], evals_result=evals_log, verbose_eval=False,
                        early_stopping_rounds=EARLY_STOPPING_ROUNDS if early_stopping else None,
                        callbacks=callbacks or [])
    aucs = evals_log["validation"][EVAL_METRIC]
    best = int(np.argmax(aucs)) if early_stopping else len(aucs) - 1
    return booster[: best + 1], float(aucs[best]), best


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in SEARCH_SPACE:
        if p.kind == "int":
            out[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            out[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
    return out


def tune(prepared: Prepared, *, trials: int = 30, seed: int = 42, chunk: int = 10,
         progress: Callable[[int, int, float | None], None] | None = None) -> list[TunedModel]:
    """Run `trials` Optuna trials; return [best, runner-up] (distinct trials, best first).

    `progress(done, total, best_auc)` is called after each trial (the CLI draws a rich progress bar with it).
    """
    if trials < 2:
        raise ValueError("tuning needs at least 2 trials to yield a best and a runner-up model")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, trials // 3)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=min(5, trials - 1), n_warmup_steps=2 * chunk)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=f"guardrail-{prepared.dataset.name}")
    kept: dict[int, tuple[xgb.Booster, float, int]] = {}  # the two best complete trials' models
    data = matrices(prepared)

    def objective(trial: optuna.Trial) -> float:
        hp = suggest(trial)
        booster, auc, best_it = train_booster(prepared, hp, seed=seed, callbacks=[_ReportAndPrune(trial, chunk)],
                                              data=data)
        kept[trial.number] = (booster, auc, best_it)
        for number in sorted(kept, key=lambda n: kept[n][1], reverse=True)[2:]:
            del kept[number]
        return auc

    start = time.perf_counter()

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress:
            done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            progress(len(study.trials), trials, study.best_value if done else None)

    study.optimize(objective, n_trials=trials, callbacks=[on_trial])
    seconds = time.perf_counter() - start
    complete = sorted((t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
                      key=lambda t: t.value, reverse=True)
    if len(complete) < 2:
        raise RuntimeError(f"only {len(complete)} trial(s) completed; raise --trials")
    models = []
    for rank, trial in enumerate(complete[:2], start=1):
        booster, auc, best_it = kept[trial.number]
        hp = {**trial.params, "num_round": best_it + 1}  # what a refit without early stopping would use
        models.append(TunedModel(booster=booster, hyperparameters=hp, validation_auc=auc, best_iteration=best_it,
                                 rank=rank, trial_number=trial.number, trials=len(study.trials), seconds=seconds,
                                 extra={"pruned": sum(t.state == optuna.trial.TrialState.PRUNED
                                                      for t in study.trials)}))
    return models
