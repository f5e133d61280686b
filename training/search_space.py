"""The hyperparameter search space, shared by local Optuna tuning and the SageMaker tuning job.

Names are the SageMaker built-in XGBoost algorithm's hyperparameter names (which are also xgboost's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OBJECTIVE = "binary:logistic"
EVAL_METRIC = "auc"
TUNING_METRIC = "validation:auc"  # what both tuners maximise
EARLY_STOPPING_ROUNDS = 50


@dataclass(frozen=True)
class Param:
    name: str
    kind: Literal["int", "float"]
    low: float
    high: float
    log: bool = False


SEARCH_SPACE: tuple[Param, ...] = (
    Param("max_depth", "int", 3, 10),
    Param("eta", "float", 0.02, 0.3, log=True),
    Param("gamma", "float", 0.0, 5.0),
    Param("min_child_weight", "float", 1.0, 10.0, log=True),
    Param("subsample", "float", 0.5, 1.0),
    Param("colsample_bytree", "float", 0.5, 1.0),
    Param("lambda", "float", 0.1, 10.0, log=True),
    Param("alpha", "float", 0.0, 2.0),
    Param("num_round", "int", 50, 400),
)

# Fixed for every trial (the SageMaker job passes them as static hyperparameters).
STATIC_HYPERPARAMETERS: dict[str, str | int] = {
    "objective": OBJECTIVE,
    "eval_metric": EVAL_METRIC,
    "tree_method": "hist",
    "early_stopping_rounds": EARLY_STOPPING_ROUNDS,
}
