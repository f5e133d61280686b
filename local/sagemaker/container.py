"""What the SageMaker XGBoost serving container (3.0-5, algorithm mode) does with a model.tar.gz and a request.

Source: aws/sagemaker-xgboost-container branch release-3.0.5, `algorithm_mode/serve.py` (invocations) and
`serve_utils.py` (parse_content_data, get_loaded_booster, predict), `encoder.py` (csv_to_dmatrix), with
xgboost 3.0.5 (docker/3.0-5/base/Dockerfile.cpu). Per request, in the container's order:
- empty body → 204, no body;
- the content type must be one the container parses (CSV here; libsvm/recordio-protobuf are not emulated), else
  415 with `data_utils.get_content_type`'s message; a CSV it cannot parse (non-numbers, ragged rows) → 415
  "Loading csv data failed with Exception, please ensure data is in csv format: ...";
- a model that cannot be loaded → 500 "Unable to load model: ..." (its /ping still answers 200);
- prediction: for a *pickled* booster the container checks columns == features or columns + 1 == features
  (else 400); for a model in xgboost's own format there is no container check and xgboost predicts with
  `validate_features=False`: FEWER columns than features are scored silently (the missing trailing columns are
  missing values), MORE columns fail in xgboost ("Number of columns does not match number of features in
  booster") → 400 "Unable to evaluate payload provided: ...";
- then the Accept type: text/csv (default, also for */*), application/json; others → 406.
"""

from __future__ import annotations

import csv
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
# data_utils.VALID_CONTENT_TYPES (release-3.0.5): get_content_type's error lists them
VALID_CONTENT_TYPES = ["csv", "libsvm", "parquet", "recordio-protobuf", "text/csv", "text/libsvm", "text/x-libsvm",
                       "application/x-parquet", "application/x-recordio-protobuf"]
SUPPORTED_ACCEPTS = ["application/json", "application/jsonlines", "application/x-recordio-protobuf", "text/csv"]
PKL_FORMAT, XGB_FORMAT = "pkl_format", "xgb_format"
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


def load_booster(files: dict[str, bytes]) -> tuple[xgb.Booster, str]:
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
                model_format = XGB_FORMAT
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
        booster, model_format = model, PKL_FORMAT
    booster.set_param({"nthread": 1})  # one request, one thread, as the container's workers
    return booster, model_format


@dataclass
class ServedModel:
    """A loaded model (or the reason it did not load) inside one variant's container."""

    booster: xgb.Booster | None
    load_error: str | None = None
    model_format: str = XGB_FORMAT  # PKL_FORMAT: the container checks the column count before predicting
    extra_latency_s: float = 0.0  # training's "slow" scenario model asks for it (booster attribute)

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> ServedModel:
        try:
            booster, model_format = load_booster(files)
        except Exception as exc:
            return cls(None, str(exc))
        # training/scenarios.py LATENCY_ATTRIBUTE: extra inference time in ms (the real container ignores it)
        extra_ms = booster.attr(LATENCY_ATTRIBUTE)
        return cls(booster, extra_latency_s=float(extra_ms) / 1000 if extra_ms else 0.0, model_format=model_format)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """serve.invocations, step by step (statuses and messages as the container's)."""
        if len(body) == 0:
            return b"", "text/html; charset=utf-8"  # the container's 204 No Content (Flask's default type)
        rows = decode(body, content_type)  # 415 on an unsupported type or unparseable CSV
        if self.booster is None:
            raise ContainerError(500, f"Unable to load model: {self.load_error}")
        try:
            preds = self._predict(rows)
            if self.extra_latency_s:
                time.sleep(self.extra_latency_s)
        except Exception as exc:
            raise ContainerError(400, f"Unable to evaluate payload provided: {exc}") from None
        return encode(np.asarray(preds), accept)

    def _predict(self, rows: np.ndarray) -> np.ndarray:
        assert self.booster is not None
        features, columns = self.booster.num_features(), rows.shape[1]
        if self.model_format == PKL_FORMAT and not (features == columns or features == columns + 1):
            raise ValueError(f"Feature size of csv inference data {columns} is not consistent with feature size "
                             f"of trained model {features}.")
        if columns == features:  # the same scores as the container's DMatrix path, faster
            return self.booster.inplace_predict(rows)
        return self.booster.predict(xgb.DMatrix(rows), validate_features=False)


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def decode(body: bytes, content_type: str) -> np.ndarray:
    """serve_utils.parse_content_data + encoder.csv_to_dmatrix: failures are the container's 415."""
    media = _media(content_type) if content_type else "libsvm"  # get_content_type(None) is LIBSVM
    if media not in ("csv", CSV):
        if media in VALID_CONTENT_TYPES:
            raise ContainerError(415, f"Content type {content_type} is accepted by the container but not emulated "
                                      "(the local emulator parses CSV only).")
        raise ContainerError(415, f"{content_type} is not an accepted ContentType: {', '.join(VALID_CONTENT_TYPES)}.")
    try:
        text = body.strip().decode("utf-8")
        sniffed = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
        delimiter = "," if sniffed.isalnum() else sniffed
        return np.array([["nan" if x == "" else x for x in line.split(delimiter)] for line in text.split("\n")]
                        ).astype(float)
    except Exception as exc:
        raise ContainerError(415, "Loading csv data failed with Exception, please ensure data is in csv format:\n "
                                  f"{type(exc)}\n {exc}") from None


def encode(preds: np.ndarray, accept: str) -> tuple[bytes, str]:
    """serve._parse_accept and the encoders: no Accept or */* → text/csv."""
    media = _media(accept) if accept else ""
    if not media or media == "*/*":
        media = CSV
    if media not in SUPPORTED_ACCEPTS:
        raise ContainerError(406, f"Accept type {accept} is not supported. Please use supported accept types: "
                                  f"{SUPPORTED_ACCEPTS}.")
    values = preds.tolist()
    if media == JSON:
        return json.dumps({"predictions": [{"score": v} for v in values]}).encode(), JSON
    if media == CSV:
        lines = [",".join(map(str, v)) if isinstance(v, list) else str(v) for v in values]
        return "\n".join(lines).encode(), CSV
    raise ContainerError(406, f"Accept type {accept} is not emulated (the local emulator answers text/csv and "
                              "application/json).")
