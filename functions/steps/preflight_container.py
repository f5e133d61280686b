"""Load a model directory and score a CSV payload exactly as the SageMaker XGBoost container 3.0-5 does.

Run as a child process by `functions.steps.preflight` (`python -m functions.steps.preflight_container <model dir>
<payload file>`): the container unpickles what it finds, and unpickling runs code, so the untrusted artifact is
opened in a process with no AWS credentials in its environment; a crash there is a verdict, not a Lambda error.
Prints one JSON object on stdout: {"models": [...], "predictions": [...]} or {"stage": ..., "error": ...}.

Source: aws/sagemaker-xgboost-container tag v3.0-5 (xgboost 3.0.5),
- `algorithm_mode/serve_utils.py` `_get_full_model_paths`: every entry of `os.listdir(model_dir)` (the folder
  SageMaker extracted model.tar.gz into) that is a regular file and does not start with "." (files in
  sub-folders are never looked at); `get_loaded_booster(model_dir, ensemble)`: all of them when
  `SAGEMAKER_INFERENCE_ENSEMBLE` is "true" (its default, `is_ensemble_enabled`), else the first listed; for each,
  `pickle.load`, else `xgb.Booster().load_model(path)`, else "Model ... cannot be loaded"; then
  `booster.set_param("nthread", 1)`; no file at all fails on `models[0]` (IndexError);
- `serve_utils.parse_content_data` + `encoder.csv_to_dmatrix`: payload stripped, decoded, delimiter sniffed
  from the first line, "" → nan, `np.array(...).astype(float)`, `xgb.DMatrix`;
- `serve_utils.predict`: a pickled first model checks columns (== features or == features - 1); predicts with
  `validate_features=False` (and `iteration_range` up to `best_ntree_limit` when a pickled booster carries
  one); an ensemble averages (mode for multi:softmax / binary:hinge, objective from the first model's config).
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import sys
from typing import Any

MODEL_DIR_ENV_ENSEMBLE = "SAGEMAKER_INFERENCE_ENSEMBLE"
PKL_FORMAT, XGB_FORMAT = "pkl_format", "xgb_format"
VOTE_OBJECTIVES = ("multi:softmax", "binary:hinge")


class ContainerFailure(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


def model_paths(model_dir: str, ensemble: bool = True) -> list[str]:
    paths = [os.path.join(model_dir, name) for name in os.listdir(model_dir)
             if os.path.isfile(os.path.join(model_dir, name)) and not name.startswith(".")]
    return paths if ensemble else paths[0:1]


def load(model_dir: str, ensemble: bool = True) -> tuple[list[Any], list[str]]:
    import xgboost as xgb

    paths = model_paths(model_dir, ensemble)
    if not paths:
        raise ContainerFailure("load", "no model file at the top level of model.tar.gz (the container's "
                                       "get_loaded_booster fails with 'list index out of range')")
    models, formats = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                booster = pickle.load(f)  # exactly what the container does (in a child without credentials)
            model_format = PKL_FORMAT
        except Exception as exp_pkl:
            try:
                booster = xgb.Booster()
                booster.load_model(path)
                model_format = XGB_FORMAT
            except Exception as exp_xgb:
                raise ContainerFailure("load", f"Model {os.path.basename(path)} cannot be loaded:\nPickle load "
                                               f"error={exp_pkl}\nXGB load model error={exp_xgb}") from None
        try:
            booster.set_param("nthread", 1)
        except Exception as exc:  # a pickle of something else (a dict, an XGBClassifier...)
            raise ContainerFailure("load", f"Model {os.path.basename(path)} unpickles to a "
                                           f"{type(booster).__name__}: {exc}") from None
        models.append(booster)
        formats.append(model_format)
    return models, formats


def csv_to_dmatrix(payload: bytes) -> Any:
    import numpy as np
    import xgboost as xgb

    try:
        text = payload.strip().decode("utf-8")
        sniffed = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
        delimiter = "," if sniffed.isalnum() else sniffed
        rows = [["nan" if x == "" else x for x in line.split(delimiter)] for line in text.split("\n")]
        return xgb.DMatrix(np.array(rows).astype(float))
    except Exception as exc:
        raise ContainerFailure("parse", f"Loading csv data failed with Exception, please ensure data is in csv "
                                        f"format:\n {type(exc)}\n {exc}") from None


def predict(models: list[Any], formats: list[str], dtest: Any) -> list[float]:
    import numpy as np

    try:
        first, first_format = models[0], formats[0]
        if first_format == PKL_FORMAT:
            x, y = first.num_features(), dtest.num_col()
            if not (x == y or x == y + 1):
                raise ValueError(f"Feature size of csv inference data {y} is not consistent with feature size of "
                                 f"trained model {x}.")

        def one(booster: Any) -> Any:
            best = getattr(booster, "best_ntree_limit", 0)
            try:
                best = int(best) if best is not None else 0
            except (TypeError, ValueError):
                best = 0
            if best > 0:
                return booster.predict(dtest, iteration_range=(0, best), validate_features=False)
            return booster.predict(dtest, validate_features=False)

        if len(models) == 1:
            preds = one(first)
        else:
            ensemble = [one(b) for b in models]
            objective = json.loads(first.save_config())["learner"]["objective"]["name"]
            if objective in VOTE_OBJECTIVES:
                from scipy import stats

                preds = stats.mode(ensemble).mode[0]
            else:
                preds = np.mean(ensemble, axis=0)
    except ContainerFailure:
        raise
    except Exception as exc:
        raise ContainerFailure("predict", f"Unable to evaluate payload provided: {exc}") from None
    return [float(v) for v in np.asarray(preds, dtype=np.float64).ravel()]


def describe(models: list[Any], formats: list[str], paths: list[str]) -> list[dict[str, Any]]:
    out = []
    for booster, model_format, path in zip(models, formats, paths, strict=True):
        names = booster.feature_names
        out.append({"file": os.path.basename(path), "format": model_format, "num_features": booster.num_features(),
                    "feature_names": list(names) if names is not None else None})
    return out


def run(model_dir: str, payload: bytes | None) -> dict[str, Any]:
    ensemble = os.environ.get(MODEL_DIR_ENV_ENSEMBLE, "true") == "true"
    result: dict[str, Any] = {"files": sorted(os.listdir(model_dir))}
    try:
        models, formats = load(model_dir, ensemble)
        result["models"] = describe(models, formats, model_paths(model_dir, ensemble))
        if payload is not None:
            result["predictions"] = predict(models, formats, csv_to_dmatrix(payload))
    except ContainerFailure as exc:
        result.update(stage=exc.stage, error=exc.message)
    return result


def main(argv: list[str]) -> int:
    model_dir, payload_file = argv[0], (argv[1] if len(argv) > 1 else None)
    payload = None
    if payload_file:
        with open(payload_file, "rb") as f:
            payload = f.read()
    out = run(model_dir, payload)
    sys.stdout.write("\n" + json.dumps(out) + "\n")  # the last line is the answer (xgboost may print warnings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
