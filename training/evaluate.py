"""Build `evaluation.json` (`functions.evaluation.ModelEvaluation`): quality, calibration, bias, baselines."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from functions.evaluation import (
    Baseline,
    Calibration,
    CalibrationBin,
    CategoricalBaseline,
    DatasetInfo,
    FacetBias,
    GoldenSample,
    GroupRate,
    Metrics,
    ModelEvaluation,
    NumericBaseline,
    SplitInfo,
    TrainingInfo,
)
from training.prepare import Prepared
from training.versions import CONTAINER_FRAMEWORK_VERSION, XGBOOST_VERSION, container_image

QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
BINS = 10


def choose_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold that maximises F1 on (validation) data."""
    precision, recall, thresholds = precision_recall_curve(y, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(np.clip(thresholds[int(np.argmax(f1[:-1]))], 0.0, 1.0)) if len(thresholds) else 0.5


def metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> Metrics:
    pred = (scores >= threshold).astype(int)
    return Metrics(
        auc=float(roc_auc_score(y, scores)),
        accuracy=float(accuracy_score(y, pred)),
        precision=float(precision_score(y, pred, zero_division=0)),
        recall=float(recall_score(y, pred, zero_division=0)),
        f1=float(f1_score(y, pred, zero_division=0)),
        log_loss=float(log_loss(y, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1])),
        brier=float(brier_score_loss(y, scores)),
        threshold=threshold,
        rows=len(y),
        positives=int(y.sum()),
        predicted_positive_rate=float(pred.mean()),
    )


def calibration(y: np.ndarray, scores: np.ndarray, bins: int = BINS) -> Calibration:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)
    out, ece = [], 0.0
    for i in range(bins):
        mask = which == i
        n = int(mask.sum())
        mean_pred = float(scores[mask].mean()) if n else None
        frac_pos = float(y[mask].mean()) if n else None
        if n:
            ece += n / len(y) * abs(mean_pred - frac_pos)  # type: ignore[operator]
        out.append(CalibrationBin(lower=float(edges[i]), upper=float(edges[i + 1]), count=n,
                                  mean_predicted=mean_pred, fraction_positive=frac_pos))
    return Calibration(brier=float(brier_score_loss(y, scores)), expected_calibration_error=float(ece), bins=out)


def facet_bias(facet: str, groups: pd.Series, y: np.ndarray, pred: np.ndarray, guarded: bool) -> FacetBias:
    sensitive = groups.astype(str).to_numpy()
    frame = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate},
                        y_true=y, y_pred=pred, sensitive_features=sensitive)
    rates = frame.by_group
    label_rates = pd.Series(y).groupby(sensitive).mean()
    counts = pd.Series(sensitive).value_counts()
    group_rates = [
        GroupRate(group=str(g), count=int(counts[g]), selection_rate=float(rates.loc[g, "selection_rate"]),
                  base_rate=float(label_rates[g]),
                  true_positive_rate=None if np.isnan(rates.loc[g, "tpr"]) else float(rates.loc[g, "tpr"]))
        for g in rates.index
    ]
    dpd = float(demographic_parity_difference(y, pred, sensitive_features=sensitive))
    dpr = float(np.nan_to_num(demographic_parity_ratio(y, pred, sensitive_features=sensitive), nan=0.0))
    label_max, label_min = float(label_rates.max()), float(label_rates.min())
    return FacetBias(
        facet=facet, guarded=guarded, groups=group_rates,
        demographic_parity_difference=dpd, demographic_parity_ratio=dpr,
        disparate_impact=dpr, difference_in_positive_proportions=dpd,
        label_disparate_impact=label_min / label_max if label_max > 0 else 0.0,
        label_difference_in_positive_proportions=label_max - label_min,
        equalized_odds_difference=float(np.nan_to_num(
            equalized_odds_difference(y, pred, sensitive_features=sensitive), nan=1.0)),
    )


def numeric_baseline(column: str, values: np.ndarray, bins: int = BINS) -> NumericBaseline:
    present = values[~np.isnan(values)]
    if not len(present):
        return NumericBaseline(column=column, count=len(values), missing=len(values), mean=None, std=None,
                               min=None, max=None, quantiles={}, bin_edges=[], bin_proportions=[1.0])
    # A column with few distinct values gets one bin per value; others get interior edges at the deciles.
    distinct = np.unique(present)
    if len(distinct) <= bins:
        edges = distinct[1:]
    else:
        edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    return NumericBaseline(
        column=column, count=len(values), missing=int(np.isnan(values).sum()), mean=float(present.mean()),
        std=float(present.std(ddof=1)) if len(present) > 1 else 0.0, min=float(present.min()),
        max=float(present.max()), quantiles={k: float(np.quantile(present, q)) for k, q in QUANTILES.items()},
        bin_edges=[float(e) for e in edges], bin_proportions=[float(c) for c in counts / counts.sum()],
    )


def baseline(prepared: Prepared, test_scores: np.ndarray) -> Baseline:
    raw = prepared["train"].raw
    features: dict[str, Any] = {}
    for col in prepared.dataset.numeric:
        features[col] = numeric_baseline(col, raw[col].to_numpy(dtype=np.float64))
    for col, mapping in prepared.one_hot.items():
        shares = raw[col].value_counts(normalize=True)
        features[col] = CategoricalBaseline(
            count=len(raw), missing=int((raw[col] == "missing").sum()), columns=mapping,
            proportions={cat: float(shares.get(cat, 0.0)) for cat in mapping})
    return Baseline(split="train", rows=len(raw), features=features,
                    prediction=numeric_baseline("prediction", test_scores.astype(np.float64)))


def dataset_info(prepared: Prepared) -> DatasetInfo:
    ds = prepared.dataset
    return DatasetInfo(
        name=ds.name, source=ds.source, synthetic=ds.synthetic, sha256=ds.sha256, rows=len(ds.frame),
        label=ds.label, positive_label=ds.positive_label, dropped_columns=ds.dropped, seed=prepared.seed,
        splits={name: SplitInfo(rows=len(s.y), positives=int(s.y.sum()), sha256=s.sha256)
                for name, s in prepared.splits.items()},
    )


def evaluate(*, model_name: str, prepared: Prepared, validation_scores: np.ndarray, test_scores: np.ndarray,
             hyperparameters: dict[str, Any], training: TrainingInfo, region: str = "us-east-1",
             algorithm: str = "xgboost", scenario: str | None = None,
             notes: list[str] | None = None, golden: GoldenSample | None = None) -> ModelEvaluation:
    """The evaluation of one model from its scores on the validation and test splits."""
    val, test = prepared["validation"], prepared["test"]
    threshold = choose_threshold(val.y, validation_scores)
    pred = (test_scores >= threshold).astype(int)
    bias = [facet_bias(facet, test.raw[facet], test.y, pred, guarded)
            for facet, guarded in prepared.dataset.facets.items()]
    return ModelEvaluation(
        model_name=model_name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        algorithm=algorithm,
        xgboost_version=XGBOOST_VERSION,
        python_version=platform.python_version(),
        container_image=container_image(region),
        container_framework_version=CONTAINER_FRAMEWORK_VERSION,
        label=prepared.dataset.label,
        features=prepared.features,
        dataset=dataset_info(prepared),
        metrics=metrics(test.y, test_scores, threshold),
        validation_metrics=metrics(val.y, validation_scores, threshold),
        calibration=calibration(test.y, test_scores),
        bias=bias,
        baseline=baseline(prepared, test_scores),
        hyperparameters=hyperparameters,
        training=training,
        scenario=scenario,
        notes=notes or [],
        golden=golden,
    )
