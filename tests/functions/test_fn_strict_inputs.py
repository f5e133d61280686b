"""Strict inputs (issue 12 §7): a string is not a number, a boolean is not an AUC, and an artifact is a real
tar archive with safe member names before anything reaches SageMaker."""

from __future__ import annotations

import importlib
import io
import tarfile

import boto3
import pytest
from fn_support import BUCKET, FakeContext, evaluation, event_for, put_model_files, real_artifact

from functions import errors
from functions.evaluation import ModelEvaluation
from functions.models import DeploymentRequest


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def parse(s3, key: str) -> dict:
    handler = importlib.import_module("functions.handlers.parse_upload").handler
    return handler(event_for(s3, key), FakeContext())


@pytest.mark.parametrize("auc", ["0.95", True, None, [0.9]])
def test_evaluation_metric_must_be_a_number(auc) -> None:
    doc = evaluation(metrics={"auc": auc})
    with pytest.raises(ValueError, match="auc"):
        ModelEvaluation.model_validate(doc)


def test_evaluation_integers_are_numbers_and_round_trips() -> None:
    doc = evaluation(metrics={"auc": 1, "log_loss": 0})  # a JSON integer is a number
    assert ModelEvaluation.model_validate(doc).metrics.auc == 1.0


@pytest.mark.parametrize(
    "request_doc",
    [
        {"canary_percent": "25"},
        {"canary_percent": 25.0},
        {"canary_percent": True},
        {"shadow": {"enabled": "yes"}},
        {"shadow": {"enabled": 1}},
        {"shadow": {"enabled": True, "duration_seconds": "60"}},
        {"guardrails": {"alpha": "0.05"}},
    ],
)
def test_deployment_json_types_are_strict(s3, request_doc) -> None:
    DeploymentRequest.model_validate({"canary_percent": 25, "shadow": {"enabled": True}})  # the good form
    key = put_model_files(s3, deployment=request_doc)
    with pytest.raises(errors.InvalidTrigger, match=r"deployment\.json is invalid"):
        parse(s3, key)


def _tar_gz(members: list[tarfile.TarInfo], data: bytes = b"model") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def _gzip_of(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


@pytest.mark.parametrize(
    ("artifact", "message"),
    [
        (_gzip_of(b"just some bytes, no tar inside" * 40), "not a tar archive"),
        (_gzip_of(b""), "not a tar archive|no model file"),
        (_tar_gz([_member("../../xgboost-model")]), "unsafe member"),
        (_tar_gz([_member("/etc/xgboost-model")]), "unsafe member"),
        (_tar_gz([_member("sub/../../x")]), "unsafe member"),
        (_tar_gz([_member("xgboost-model", tarfile.SYMTYPE, "/etc/passwd")]), "not a regular file"),
        (_tar_gz([_member("xgboost-model", tarfile.LNKTYPE, "other")]), "not a regular file"),
        (_tar_gz([_member("dir", tarfile.DIRTYPE)]), "no model file"),
        (real_artifact()[: len(real_artifact()) // 2], "truncated|not a tar archive"),
    ],
    ids=["gzip-no-tar", "gzip-empty", "dotdot", "absolute", "inner-dotdot", "symlink", "hardlink", "empty-tar",
         "truncated"],
)
def test_artifact_must_be_a_safe_tar(s3, artifact: bytes, message: str) -> None:
    key = put_model_files(s3, artifact=artifact)
    with pytest.raises(errors.InvalidArtifact, match=message):
        parse(s3, key)


def test_real_artifact_passes(s3) -> None:
    key = put_model_files(s3, artifact=real_artifact())
    assert parse(s3, key)["model_name"] == "xgb-best"
