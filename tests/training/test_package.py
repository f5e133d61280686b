"""model.tar.gz round-trips the way the SageMaker XGBoost container loads it."""

import io
import pickle
import tarfile

import numpy as np
import pytest
import xgboost as xgb

from training.data import synthetic_promotion
from training.package import (
    MODEL_FILE,
    ModelLoadError,
    load_model_tarball,
    predict_csv,
    tarball,
    write_model_tarball,
)
from training.prepare import prepare


@pytest.fixture(scope="module")
def trained():
    p = prepare(synthetic_promotion(rows=2_000, seed=5), seed=5)
    dtrain = xgb.DMatrix(p["train"].X, label=p["train"].y, feature_names=p.features)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 2}, dtrain, 20)
    return p, booster


def test_tarball_holds_one_xgboost_model_file(trained, tmp_path):
    _, booster = trained
    path = write_model_tarball(booster, tmp_path / "model.tar.gz")
    with tarfile.open(path) as tar:
        assert tar.getnames() == [MODEL_FILE]
        raw = tar.extractfile(MODEL_FILE).read()
    assert raw[:1] == b"{"  # UBJSON object, what save_model writes by default
    assert path.read_bytes() == write_model_tarball(booster, tmp_path / "again.tar.gz").read_bytes()


def test_container_style_load_gives_same_predictions_from_csv(trained, tmp_path):
    p, booster = trained
    path = write_model_tarball(booster, tmp_path / "model.tar.gz")
    [loaded] = load_model_tarball(path)
    assert loaded.feature_names is None  # CSV payloads carry no names
    rows = p["holdout"].X[:50]
    payload = "\n".join(",".join(f"{v:.10g}" for v in row) for row in rows).encode()
    expected = booster.predict(xgb.DMatrix(rows, feature_names=p.features))
    np.testing.assert_allclose(predict_csv([loaded], payload), expected, rtol=1e-6)


def test_pickled_booster_is_also_accepted_like_the_container(trained):
    _, booster = trained
    [loaded] = load_model_tarball(tarball({MODEL_FILE: pickle.dumps(booster)}))
    assert isinstance(loaded, xgb.Booster)


@pytest.mark.parametrize("content", [b"PK\x03\x04not-a-model", b"{\"learner\": 1}", b"\x00" * 64])
def test_files_xgboost_rejects_fail_to_load(content):
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        load_model_tarball(tarball({"model_algo-1": content}))


def test_corrupt_and_empty_tarballs_fail():
    with pytest.raises(ModelLoadError, match="cannot be extracted"):
        load_model_tarball(b"not a tarball")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz"):
        pass
    with pytest.raises(ModelLoadError, match="no model file"):
        load_model_tarball(buffer.getvalue())
