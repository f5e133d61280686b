"""`model.tar.gz` in the SageMaker XGBoost container's format, and loading it back the way the container does.

The container (sagemaker-xgboost 3.0-5, `algorithm_mode/serve_utils.get_loaded_booster`) extracts the tarball
into /opt/ml/model and, for every file there, tries `pickle.load` and then `xgb.Booster().load_model(path)`,
failing with "Model at ... cannot be loaded" if both fail; then it sets nthread=1 and predicts on a DMatrix
parsed from the CSV payload with `validate_features=False`. We write one file, `xgboost-model`, in xgboost's
UBJSON format (what `save_model` writes by default), with no feature names (CSV payloads have none).
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import xgboost as xgb

MODEL_FILE = "xgboost-model"


class ModelLoadError(RuntimeError):
    """The artifact cannot be loaded the way the serving container loads it."""


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0  # fixed mtime: same model, same bytes
    tar.addfile(info, io.BytesIO(data))


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            _add_bytes(tar, name, data)
    return gzip.compress(buffer.getvalue(), compresslevel=6, mtime=0)


def booster_bytes(booster: xgb.Booster) -> bytes:
    """The booster as the container loads it: UBJSON, no feature names/types."""
    clone = booster.copy()
    clone.feature_names = None
    clone.feature_types = None
    return bytes(clone.save_raw(raw_format="ubj"))


def write_model_tarball(booster: xgb.Booster, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tarball({MODEL_FILE: booster_bytes(booster)}))
    return path


def load_model_tarball(data: bytes | Path | str) -> list[xgb.Booster]:
    """Load every model file in the tarball exactly as the container does; raise ModelLoadError if it cannot."""
    raw = Path(data).read_bytes() if isinstance(data, Path | str) else data
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ModelLoadError(f"model.tar.gz cannot be extracted: {e}") from e
        files = sorted(p for p in Path(tmp).iterdir() if p.is_file())
        if not files:
            raise ModelLoadError("model.tar.gz contains no model file")
        boosters = []
        for path in files:
            try:
                with path.open("rb") as f:
                    booster = pickle.load(f)
            except Exception as exp_pkl:
                try:
                    booster = xgb.Booster()
                    booster.load_model(str(path))
                except Exception as exp_xgb:
                    raise ModelLoadError(f"Model at {path.name} cannot be loaded:\n{exp_pkl}\n{exp_xgb}") from exp_xgb
            if not isinstance(booster, xgb.Booster):
                raise ModelLoadError(f"Model at {path.name} is a {type(booster).__name__}, not an xgboost Booster")
            booster.set_param("nthread", 1)
            boosters.append(booster)
        return boosters


def parse_csv_payload(payload: bytes) -> np.ndarray:
    """A text/csv request body (rows of numbers, no header, no label) as the container parses it."""
    text = payload.strip().decode("utf-8")
    rows = [[float(v) if v.strip() else np.nan for v in line.split(",")] for line in text.splitlines() if line]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("CSV payload must have rows of equal length")
    return np.asarray(rows, dtype=np.float64)


def predict_csv(boosters: list[xgb.Booster], payload: bytes) -> np.ndarray:
    """Scores for a CSV payload: mean over the loaded boosters, as the container's ensemble does."""
    dtest = xgb.DMatrix(parse_csv_payload(payload))
    preds = [b.predict(dtest, validate_features=False) for b in boosters]
    return preds[0] if len(preds) == 1 else np.mean(preds, axis=0)
