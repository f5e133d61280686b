"""Build the tuned models and the scenario models into `<out>/<name>/`, all with the same code.

| name | what | deployment.json |
|---|---|---|
| xgb-best | best Optuna trial | ALL_AT_ONCE |
| xgb-runnerup | a distinct runner-up trial | CANARY 25 % |
| incompatible | a linear model's weights in a linear-learner-style `model_algo-1` zip: neither pickle nor xgboost loads it, so the container answers 500 "Unable to load model" | CANARY 25 % |
| slow | valid, heavier XGBoost (boosted forest: many parallel trees) + `guardrail_latency_ms` booster attribute the emulator honours as extra inference time | LINEAR 50 % |
| below-threshold | XGBoost trained on shuffled labels (AUC about 0.5) | ALL_AT_ONCE |
| biased | XGBoost on synthetic employee promotion with strong gender bias (disparate impact far from 1) | ALL_AT_ONCE |
| worse | valid, same features and latency, trained on a small fraction of the rows: AUC a few points lower | shadow test |
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import KBinsDiscretizer

from functions.evaluation import GoldenSample, ModelEvaluation, TrainingInfo
from training.artifacts import inputs_hash, is_current, read_evaluation, write_model_dir
from training.data import Dataset, load_bank, load_csv, subsample, synthetic_promotion
from training.evaluate import evaluate
from training.golden import golden_sample
from training.package import booster_bytes, tarball
from training.prepare import Prepared, prepare
from training.tune import TunedModel, train_booster, tune

TUNED = ("xgb-best", "xgb-runnerup")
SCENARIOS = ("incompatible", "slow", "below-threshold", "biased", "worse")
ALL_MODELS = TUNED + SCENARIOS

SLOW_LATENCY_MS = 150  # extra inference time the emulator adds for the slow model (booster attribute)
LATENCY_ATTRIBUTE = "guardrail_latency_ms"
WORSE_FRACTION = 0.04
BIASED_ROWS = 20_000
BIASED_GENDER_BIAS = 1.5

DEPLOYMENT: dict[str, dict[str, Any]] = {
    "xgb-best": {"strategy": "ALL_AT_ONCE"},
    "xgb-runnerup": {"strategy": "CANARY", "canary_percent": 25},
    "incompatible": {"strategy": "CANARY", "canary_percent": 25},
    "slow": {"strategy": "LINEAR", "linear_step_percent": 50},
    "below-threshold": {"strategy": "ALL_AT_ONCE"},
    "biased": {"strategy": "ALL_AT_ONCE"},
    "worse": {"strategy": "ALL_AT_ONCE", "shadow": {"enabled": True, "sampling_percent": 100}},
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    data: str = "bank"  # "bank", "promotion" (synthetic) or a CSV path
    trials: int = 30
    seed: int = 42
    with_duration: bool = False
    region: str = "us-east-1"
    max_rows: int | None = None  # stratified subsample of every data set (fast tests / quick demos)


def load_dataset(data: str, *, seed: int, with_duration: bool) -> Dataset:
    if data == "bank":
        return load_bank(with_duration=with_duration)
    if data == "promotion":
        return synthetic_promotion(seed=seed)
    return load_csv(data, with_duration=with_duration)


def _scores(booster: xgb.Booster, X: np.ndarray) -> np.ndarray:
    return booster.predict(xgb.DMatrix(X))


def _golden(prepared: Prepared, booster: xgb.Booster) -> GoldenSample:
    """Pre-flight's golden sample: test rows as CSV lines and this booster's scores on exactly those lines."""
    return golden_sample(prepared["test"], lambda X: booster.predict(xgb.DMatrix(X), validate_features=False),
                         num_features=booster.num_features())


def _xgb_evaluation(name: str, prepared: Prepared, booster: xgb.Booster, hp: dict[str, Any],
                    training: TrainingInfo, options: BuildOptions, notes: list[str] | None = None) -> ModelEvaluation:
    return evaluate(model_name=name, prepared=prepared, validation_scores=_scores(booster, prepared["validation"].X),
                    test_scores=_scores(booster, prepared["test"].X), hyperparameters=hp, training=training,
                    region=options.region, scenario=name, notes=notes, golden=_golden(prepared, booster))


def _tuned_training(model: TunedModel) -> TrainingInfo:
    return TrainingInfo(method=model.method, trials=model.trials, rank=model.rank, trial_number=model.trial_number,
                        validation_auc=model.validation_auc, best_iteration=model.best_iteration,
                        seconds=round(model.seconds, 2))


class Builder:
    """Builds models into `out`, preparing each data set once and skipping up-to-date ones with `reuse`."""

    def __init__(self, out: Path | str, options: BuildOptions, *, reuse: bool = False,
                 progress: Progress | None = None, data_out: Path | str | None = None,
                 on_trial: Callable[[int, int, float | None], None] | None = None) -> None:
        self.out, self.options, self.reuse = Path(out), options, reuse
        self.data_out = Path(data_out) if data_out else self.out.parent / "data"
        self.progress = progress or (lambda _msg: None)
        self.on_trial = on_trial or (lambda done, total, best: self.progress(
            f"tuning: trial {done}/{total}, best validation AUC {best or 0:.4f}"))
        self._prepared: dict[str, Prepared] = {}

    def prepared(self, data: str) -> Prepared:
        if data not in self._prepared:
            o = self.options
            dataset = load_dataset(data, seed=o.seed, with_duration=o.with_duration) if data != "biased" else \
                synthetic_promotion(rows=min(BIASED_ROWS, o.max_rows or BIASED_ROWS), seed=o.seed,
                                    gender_bias=BIASED_GENDER_BIAS)
            if o.max_rows:
                dataset = subsample(dataset, o.max_rows, seed=o.seed)
            self.progress(f"prepared {dataset.name} ({len(dataset.frame)} rows)")
            prepared = prepare(dataset, seed=o.seed)
            prepared.write(self.data_out / (dataset.name + ("-biased" if data == "biased" else "")))
            self._prepared[data] = prepared
        return self._prepared[data]

    def _stamp(self, name: str) -> str:
        o = self.options
        data = o.data if name in TUNED else ("biased" if name == "biased" else "bank")
        if Path(data).is_file():
            data = hashlib.sha256(Path(data).read_bytes()).hexdigest()
        return inputs_hash(name=name, data=data, trials=o.trials if name in TUNED else None, seed=o.seed,
                           with_duration=o.with_duration, region=o.region, max_rows=o.max_rows)

    def build(self, names: tuple[str, ...] | list[str] = ALL_MODELS) -> dict[str, ModelEvaluation]:
        unknown = sorted(set(names) - set(ALL_MODELS))
        if unknown:
            raise ValueError(f"unknown model names {unknown}; choose from {list(ALL_MODELS)}")
        results: dict[str, ModelEvaluation] = {}
        todo = []
        for name in names:
            if self.reuse and is_current(self.out / name, self._stamp(name)):
                self.progress(f"{name}: up to date, reused")
                results[name] = read_evaluation(self.out / name)
            else:
                todo.append(name)
        if any(n in TUNED for n in todo):
            results.update(self._build_tuned([n for n in todo if n in TUNED]))
        for name in (n for n in todo if n not in TUNED):
            start = time.perf_counter()
            results[name] = getattr(self, "_build_" + name.replace("-", "_"))()
            self.progress(f"{name}: AUC {results[name].metrics.auc:.4f} ({time.perf_counter() - start:.1f} s)")
        return results

    def _write(self, name: str, model_bytes: dict[str, bytes], evaluation: ModelEvaluation) -> ModelEvaluation:
        write_model_dir(self.out / name, tarball=tarball(model_bytes), evaluation=evaluation,
                        deployment=DEPLOYMENT[name], stamp=self._stamp(name))
        return evaluation

    def _build_tuned(self, names: list[str]) -> dict[str, ModelEvaluation]:
        prepared = self.prepared(self.options.data)
        models = tune(prepared, trials=self.options.trials, seed=self.options.seed, progress=self.on_trial)
        out = {}
        for name, model in zip(TUNED, models, strict=True):
            ev = _xgb_evaluation(name, prepared, model.booster, model.hyperparameters, _tuned_training(model),
                                 self.options, notes=[f"Optuna trial {model.trial_number}, rank {model.rank}"])
            out[name] = ev
            if name in names:
                self._write(name, {"xgboost-model": booster_bytes(model.booster)}, ev)
                self.progress(f"{name}: validation AUC {model.validation_auc:.4f}, test AUC {ev.metrics.auc:.4f}")
        return {n: out[n] for n in names}

    def _fixed(self, name: str, prepared: Prepared, hp: dict[str, Any], notes: list[str],
               train: tuple[np.ndarray, np.ndarray] | None = None, early_stopping: bool = True,
               attributes: dict[str, str] | None = None) -> ModelEvaluation:
        start = time.perf_counter()
        booster, auc, best_it = train_booster(prepared, hp, seed=self.options.seed, train=train,
                                              early_stopping=early_stopping)
        if attributes:
            booster.set_attr(**attributes)
        training = TrainingInfo(method="fixed", trials=0, validation_auc=auc, best_iteration=best_it,
                                seconds=round(time.perf_counter() - start, 2))
        ev = _xgb_evaluation(name, prepared, booster, hp, training, self.options, notes=notes)
        return self._write(name, {"xgboost-model": booster_bytes(booster)}, ev)

    def _build_slow(self) -> ModelEvaluation:
        hp = {"max_depth": 8, "eta": 0.1, "num_parallel_tree": 8, "subsample": 0.5, "colsample_bynode": 0.6,
              "min_child_weight": 2.0, "max_bin": 64, "num_round": 40}
        return self._fixed("slow", self.prepared("bank"), hp, attributes={LATENCY_ATTRIBUTE: str(SLOW_LATENCY_MS)},
                           early_stopping=False,
                           notes=["Valid but slow: a boosted forest (8 parallel trees per round, depth 8), several "
                                  "times the trees of xgb-best.",
                                  f"Booster attribute {LATENCY_ATTRIBUTE}={SLOW_LATENCY_MS}: the local SageMaker "
                                  "emulator adds this much inference time (the real container ignores it)."])

    def _build_below_threshold(self) -> ModelEvaluation:
        prepared = self.prepared("bank")
        rng = np.random.default_rng(self.options.seed)
        shuffled = rng.permutation(prepared["train"].y)
        hp = {"max_depth": 4, "eta": 0.1, "num_round": 30}
        return self._fixed("below-threshold", prepared, hp, train=(prepared["train"].X, shuffled),
                           early_stopping=False,
                           notes=["Trained on shuffled labels: no signal, AUC about 0.5, below any MinAuc."])

    def _build_worse(self) -> ModelEvaluation:
        prepared = self.prepared("bank")
        rng = np.random.default_rng(self.options.seed + 1)
        n = len(prepared["train"].y)
        idx = np.sort(rng.choice(n, size=max(200, int(n * WORSE_FRACTION)), replace=False))
        hp = {"max_depth": 3, "eta": 0.1, "min_child_weight": 1.0, "num_round": 60}
        return self._fixed("worse", prepared, hp, train=(prepared["train"].X[idx], prepared["train"].y[idx]),
                           early_stopping=False,
                           notes=[f"Trained on {WORSE_FRACTION:.0%} of the training rows: valid, same features and "
                                  "latency, a few points lower AUC."])

    def _build_biased(self) -> ModelEvaluation:
        prepared = self.prepared("biased")
        hp = {"max_depth": 5, "eta": 0.1, "subsample": 0.9, "num_round": 200}
        return self._fixed("biased", prepared, hp,
                           notes=[f"SYNTHETIC employee-promotion data with gender_bias={BIASED_GENDER_BIAS} log-odds "
                                  "for men: the model learns the bias (disparate impact on gender far from 1)."])

    def _build_incompatible(self) -> ModelEvaluation:
        prepared = self.prepared("bank")
        start = time.perf_counter()
        # A decent linear model (numeric columns binned at deciles, so it matches the tuned models' AUC within
        # about a point and passes the quality gate): its fault is the format, not its quality.
        numeric = list(range(len(prepared.dataset.numeric)))
        bins = KBinsDiscretizer(n_bins=10, encode="onehot", strategy="quantile", quantile_method="linear")
        model = make_pipeline(ColumnTransformer([("bins", bins, numeric)], remainder="passthrough"),
                              LogisticRegression(max_iter=2000, C=1.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "bins whose width are too small" on discrete columns
            model.fit(prepared["train"].X, prepared["train"].y)

        def scores(X: np.ndarray) -> np.ndarray:
            return model.predict_proba(X)[:, 1]

        # A linear-learner-style artifact: `model_algo-1` is a zip of the linear model's parameters.
        fitted_bins = model[0].named_transformers_["bins"]
        weights = {"feature_dim": len(prepared.features), "binned_columns": numeric,
                   "bin_edges": [e.tolist() for e in fitted_bins.bin_edges_],
                   "weight": model[-1].coef_[0].tolist(), "bias": float(model[-1].intercept_[0])}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr("manifest.json", json.dumps({"algorithm": "linear-learner", "predictor_type":
                                                    "binary_classifier", "format": "json-weights"}))
            z.writestr("model.json", json.dumps(weights))
        training = TrainingInfo(method="fixed", trials=0, validation_auc=None,
                                seconds=round(time.perf_counter() - start, 2))
        ev = evaluate(model_name="incompatible", prepared=prepared,
                      validation_scores=scores(prepared["validation"].X), test_scores=scores(prepared["test"].X),
                      hyperparameters={"predictor_type": "binary_classifier", "C": 1.0, "numeric_bins": 10}, training=training,
                      region=self.options.region, algorithm="linear-learner", scenario="incompatible",
                      golden=golden_sample(prepared["test"], scores, num_features=len(prepared.features)),
                      notes=["Incompatible with the XGBoost container: the artifact holds a linear model "
                             "(linear-learner-style model_algo-1 zip); pickle.load and xgb.Booster.load_model both "
                             "reject it, so the container answers 500 'Unable to load model'.",
                             "Metrics are the linear model's own (honest), computed before packaging."])
        return self._write("incompatible", {"model_algo-1": buffer.getvalue()}, ev)


def build_models(out: Path | str = "artifacts/models", *, names: tuple[str, ...] | list[str] = ALL_MODELS,
                 options: BuildOptions | None = None, reuse: bool = False,
                 progress: Progress | None = None) -> dict[str, ModelEvaluation]:
    """Build `names` into `out/<name>/`; the one call the CLI, the demo and the e2e tests use."""
    return Builder(out, options or BuildOptions(), reuse=reuse, progress=progress).build(names)
