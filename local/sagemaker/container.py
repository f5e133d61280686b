"""What the SageMaker XGBoost serving container does with a model.tar.gz and a request.

Loading follows the container: unpack the tarball, take `xgboost-model` (or the single file), try pickle,
then `xgb.Booster().load_model`. A model that cannot be loaded does not stop the container (its /ping still
answers 200), so every invocation gets 500 "Unable to load model: ..."; a payload that cannot be scored
gets 400 "Unable to evaluate payload provided: ...".
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tarfile
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

CSV = "text/csv"
JSON = "application/json"
LATENCY_ATTRIBUTE = "guardrail_latency_ms"  # = training.scenarios.LATENCY_ATTRIBUTE


class ArtifactError(Exception):
    """The artifact cannot even be fetched or unpacked: provisioning fails (as on AWS)."""


class ContainerError(Exception):
    """An error answered by the container itself, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def unpack(data: bytes, url: str) -> dict[str, bytes]:
    """model.tar.gz → {file name: bytes} (regular files only)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            return {
                os.path.basename(m.name): tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArtifactError(
            f'Failed to extract model data archive from URL "{url}". Please ensure that the object located '
            f"at the URL is a valid tar.gz archive. ({exc})"
        ) from None


def load_booster(files: dict[str, bytes]) -> xgb.Booster:
    """As the container's get_loaded_booster: pickle first, then xgboost's own format."""
    if "xgboost-model" in files:
        name = "xgboost-model"
    elif len(files) == 1:
        name = next(iter(files))
    else:
        raise RuntimeError(f"Model directory should contain exactly one model file, found {sorted(files)}")
    raw = files[name]
    try:
        model = pickle.loads(raw)  # the container does exactly this
    except Exception as pkl_exc:
        try:
            with tempfile.NamedTemporaryFile(suffix=os.path.splitext(name)[1] or ".ubj") as tmp:
                tmp.write(raw)
                tmp.flush()
                booster = xgb.Booster()
                booster.load_model(tmp.name)
        except Exception as xgb_exc:
            raise RuntimeError(
                f"Model {name} cannot be loaded: Pickle load error={pkl_exc} XGB load model error={xgb_exc}"
            ) from None
    else:
        if isinstance(model, xgb.XGBModel):
            model = model.get_booster()
        if not isinstance(model, xgb.Booster):
            # the container calls booster.set_param(...) next, which fails on anything else
            raise RuntimeError(f"'{type(model).__name__}' object has no attribute 'set_param'")
        booster = model
    booster.set_param({"nthread": 1})  # one request, one thread, as the container's workers
    return booster


@dataclass
class ServedModel:
    """A loaded model (or the reason it did not load) inside one variant's container."""

    booster: xgb.Booster | None
    load_error: str | None = None
    extra_latency_s: float = 0.0  # training's "slow" scenario model asks for it (booster attribute)

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> ServedModel:
        try:
            booster = load_booster(files)
        except Exception as exc:
            return cls(None, str(exc))
        # training/scenarios.py LATENCY_ATTRIBUTE: extra inference time in ms (the real container ignores it)
        extra_ms = booster.attr(LATENCY_ATTRIBUTE)
        return cls(booster, extra_latency_s=float(extra_ms) / 1000 if extra_ms else 0.0)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        if self.booster is None:
            raise ContainerError(500, f"Unable to load model: {self.load_error}")
        try:
            rows = decode(body, content_type)
            preds = self.booster.inplace_predict(rows)
            if self.extra_latency_s:
                time.sleep(self.extra_latency_s)
        except ContainerError:
            raise
        except Exception as exc:
            raise ContainerError(400, f"Unable to evaluate payload provided: {exc}") from None
        return encode(np.asarray(preds), accept)


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def decode(body: bytes, content_type: str) -> np.ndarray:
    media = _media(content_type or CSV)
    if media not in (CSV, JSON):
        raise ContainerError(415, f"Content type {content_type} is not supported by this framework.")
    text = body.decode("utf-8")
    if media == CSV:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ValueError("empty CSV payload")
        return np.array(
            [[float(v) if v.strip() else np.nan for v in line.split(",")] for line in lines], dtype=np.float32
        )
    doc = json.loads(text)
    if isinstance(doc, dict) and "instances" in doc:
        rows = [r["features"] if isinstance(r, dict) else r for r in doc["instances"]]
    elif isinstance(doc, dict) and "features" in doc:
        rows = [doc["features"]]
    elif isinstance(doc, list):
        rows = doc if doc and isinstance(doc[0], list) else [doc]
    else:
        raise ValueError('JSON payload must be {"instances": [...]} or {"features": [...]}')
    return np.array(rows, dtype=np.float32)


def encode(preds: np.ndarray, accept: str) -> tuple[bytes, str]:
    media = _media(accept or CSV)
    values = preds.tolist()
    if media == JSON:
        return json.dumps({"predictions": [{"score": v} for v in values]}).encode(), JSON
    if media in (CSV, "*/*"):
        lines = [",".join(map(str, v)) if isinstance(v, list) else str(v) for v in values]
        return "\n".join(lines).encode(), CSV
    raise ContainerError(406, f"Accept type {accept} is not supported by this framework.")
