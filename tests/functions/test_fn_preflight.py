"""preflight: real tiny xgboost models trained here, packaged as training packages them, uploaded to a versioned
moto bucket, loaded by the container-rules child process and scored on the golden sample."""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import numpy as np
import pytest
import xgboost as xgb
from fn_support import BUCKET, ENDPOINT, IMAGE, ROLE, FakeContext, evaluation, event_for

from functions import errors
from functions.config import load_settings
from functions.evaluation import ModelEvaluation
from functions.models import ParseUploadInput, PreFlightResult, Upload
from functions.steps.parse_upload import parse_upload
from functions.steps.preflight import preflight
from training.golden import golden_sample
from training.package import booster_bytes, tarball
from training.prepare import Split

FEATURES = [f"f{i}" for i in range(62)]


def _data(columns: int = 62, rows: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, columns)).round(3)
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return X, y


def _train(columns: int = 62, seed: int = 0, rounds: int = 8) -> xgb.Booster:
    X, y = _data(columns, seed=seed)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": seed, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=rounds)


def _split(columns: int = 62) -> Split:
    X, y = _data(columns, rows=40, seed=99)
    lines = [",".join([str(int(label)), *(repr(float(v)) for v in row)]) for label, row in zip(y, X, strict=True)]
    return Split(X=X, y=y, raw=None, csv=("\n".join(lines) + "\n").encode())  # type: ignore[arg-type]


def _evaluation(booster: xgb.Booster, features: list[str] = FEATURES) -> dict:
    golden = golden_sample(_split(len(features)), lambda X: booster.predict(xgb.DMatrix(X)),
                           num_features=booster.num_features())
    return evaluation(features=features, golden=golden.model_dump(mode="json"))


def _tar(files: dict[str, bytes]) -> bytes:
    return tarball(files)


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def _upload(s3, artifact: bytes, doc: dict, version: str = "2", deployment: dict | None = None) -> Upload:
    prefix = f"models/xgb-best/{version}/"
    s3.put_object(Bucket=BUCKET, Key=prefix + "evaluation.json", Body=json.dumps(doc))
    if deployment is not None:
        s3.put_object(Bucket=BUCKET, Key=prefix + "deployment.json", Body=json.dumps(deployment))
    s3.put_object(Bucket=BUCKET, Key=prefix + "model.tar.gz", Body=artifact)
    event = event_for(s3, prefix + "model.tar.gz")
    return parse_upload(ParseUploadInput.model_validate(event), load_settings())


def _rejected(upload: Upload) -> str:
    with pytest.raises(errors.ModelRejected) as info:
        preflight(upload, load_settings())
    assert type(info.value).__name__ == "ModelRejected"  # the state machine's REJECTED path
    assert str(info.value).startswith("Model rejected by pre-flight: ")
    return str(info.value)


def test_a_good_model_passes_with_the_recorded_scores(s3) -> None:
    booster = _train()
    doc = _evaluation(booster)
    assert len(ModelEvaluation.model_validate(doc).golden.rows) == 20  # type: ignore[union-attr]
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(booster)}), doc)
    from functions.handlers.preflight import handler

    out = PreFlightResult.model_validate(handler({"upload": upload.model_dump(mode="json")}, FakeContext()))
    assert out.status == "PASSED" and out.reasons == [] and out.notes == []
    assert out.version_id == upload.version_id and out.files == ["xgboost-model"]
    assert [(m.file, m.format, m.num_features) for m in out.models] == [("xgboost-model", "xgb_format", 62)]
    assert out.golden_rows == 20 and out.candidate_features == 62
    assert out.max_relative_difference is not None and out.max_relative_difference <= 1e-6


def test_a_truncated_model_file_is_rejected(s3) -> None:
    raw = booster_bytes(_train())
    upload = _upload(s3, _tar({"xgboost-model": raw[: len(raw) // 2]}), _evaluation(_train()))
    message = _rejected(upload)
    assert "the serving container cannot load it: Model xgboost-model cannot be loaded" in message


def test_a_truncated_archive_is_rejected(s3) -> None:
    booster = _train()
    whole = _tar({"xgboost-model": booster_bytes(booster)})
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(booster)}), _evaluation(booster))
    s3.put_object(Bucket=BUCKET, Key=upload.key, Body=whole[: len(whole) // 2])  # a newer, cut version
    cut = upload.model_copy(update={"version_id": s3.head_object(Bucket=BUCKET, Key=upload.key)["VersionId"]})
    assert "is truncated" in _rejected(cut)


def test_a_model_with_61_of_62_features_is_rejected(s3) -> None:
    good = _train()
    short = _train(columns=61)
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(short)}), _evaluation(good))
    message = _rejected(upload)
    assert "xgboost-model takes 61 feature(s), the candidate's evaluation.json has 62" in message
    assert "the model training packaged took 62" in message


def test_different_scores_on_the_golden_sample_are_rejected(s3) -> None:
    recorded = _train(seed=0)
    swapped = _train(seed=1, rounds=12)  # same schema, another model
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(swapped)}), _evaluation(recorded))
    message = _rejected(upload)
    assert "golden rows score differently from training (relative tolerance 1e-06)" in message


def test_feature_count_is_checked_against_production_schema(s3) -> None:
    booster = _train()
    s3.put_object(Bucket=BUCKET, Key="models/xgb-best/1/evaluation.json",
                  Body=json.dumps(evaluation(features=[*FEATURES, "f62"])))
    sm = boto3.client("sagemaker")
    sm.create_model(ModelName="xgb-best-1", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/xgb-best/1/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="xgb-best-1-cfg", ProductionVariants=[
        {"VariantName": "v-xgb-best-1", "ModelName": "xgb-best-1", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="xgb-best-1-cfg")
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(booster)}), _evaluation(booster))
    assert "xgboost-model takes 62 feature(s), production's schema has 63" in _rejected(upload)


def test_path_traversal_member_is_rejected(s3) -> None:
    booster = _train()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("xgboost-model", "../evil"):
            data = booster_bytes(booster)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    # parse_upload refuses it already; pre-flight must too (it reads the object again, by version)
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(booster)}), _evaluation(booster))
    s3.put_object(Bucket=BUCKET, Key=upload.key, Body=buffer.getvalue())
    evil = upload.model_copy(update={"version_id": s3.head_object(Bucket=BUCKET, Key=upload.key)["VersionId"]})
    assert "unsafe member name '../evil'" in _rejected(evil)


def test_the_exact_uploaded_version_is_checked(s3) -> None:
    booster = _train()
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(booster)}), _evaluation(booster))
    s3.put_object(Bucket=BUCKET, Key=upload.key, Body=_tar({"xgboost-model": b"garbage"}))  # overwritten later
    assert preflight(upload, load_settings()).status == "PASSED"


def test_every_top_level_file_is_a_model_for_the_container(s3) -> None:
    """Container 3.0-5 (ensemble on by default) loads every non-dot file at the top level, not just
    xgboost-model: a README beside the model makes it unloadable; dotfiles and sub-folders are ignored."""
    booster = _train()
    doc = _evaluation(booster)
    model = booster_bytes(booster)
    ok = _upload(s3, _tar({"xgboost-model": model, ".DS_Store": b"x", "docs/README": b"notes"}), doc, version="2")
    assert preflight(ok, load_settings()).files == [".DS_Store", "docs", "xgboost-model"]
    readme = _upload(s3, _tar({"xgboost-model": model, "README": b"notes"}), doc, version="3")
    assert "Model README cannot be loaded" in _rejected(readme)


def test_opt_out_in_deployment_json_skips_preflight(s3) -> None:
    upload = _upload(s3, _tar({"xgboost-model": b"not a model"}), _evaluation(_train()),
                     deployment={"strategy": "CANARY", "canary_percent": 25, "preflight": False})
    assert upload.preflight is False
    result = preflight(upload, load_settings())
    assert result.status == "SKIPPED" and result.models == []


def test_an_old_evaluation_without_golden_sample_still_loads_and_counts(s3) -> None:
    booster = _train()
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(booster)}), evaluation(features=FEATURES))
    result = preflight(upload, load_settings())
    assert result.status == "PASSED" and result.golden_rows == 0 and "no golden sample" in result.notes[0]
    short = _upload(s3, _tar({"xgboost-model": booster_bytes(_train(columns=61))}), evaluation(features=FEATURES),
                    version="3")
    assert "takes 61 feature(s)" in _rejected(short)


def test_the_loader_child_gets_no_credentials_and_cannot_read_the_parents(s3, monkeypatch, tmp_path) -> None:
    """A pickle runs code when loaded (the container does load pickles): the child's environment holds no AWS
    credentials, and the parent is non-dumpable, so /proc/<parent>/environ is closed to a non-root child."""
    from functions.steps import preflight as step

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    env = step.child_environment()
    assert not [k for k in env if k.startswith("AWS_")] and "PYTHONPATH" in env
    assert step.protect_parent() is True
    import ctypes

    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE


def test_a_link_member_is_rejected_before_anything_is_extracted(s3) -> None:
    booster = _train()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    upload = _upload(s3, _tar({"xgboost-model": booster_bytes(booster)}), _evaluation(booster))
    s3.put_object(Bucket=BUCKET, Key=upload.key, Body=buffer.getvalue())
    link = upload.model_copy(update={"version_id": s3.head_object(Bucket=BUCKET, Key=upload.key)["VersionId"]})
    assert "member 'xgboost-model' is not a regular file (link or device)" in _rejected(link)
