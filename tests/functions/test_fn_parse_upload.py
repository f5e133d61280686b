"""parse_upload against moto S3, through the real handler: good uploads and every kind of bad input."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest
from fn_support import BUCKET, FakeContext, event_for, put_model_files, s3_event

from functions import errors
from functions.config import load_settings
from functions.models import ParseUploadInput, Upload
from functions.steps.parse_upload import parse_upload, split_key


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def handler():
    return importlib.import_module("functions.handlers.parse_upload").handler


def test_good_upload_with_defaults(s3) -> None:
    key = put_model_files(s3, "xgb-best", "1.2")
    out = Upload.model_validate(handler()(event_for(s3, key), FakeContext()))
    assert (out.model_name, out.model_version, out.endpoint_name) == ("xgb-best", "1.2", "guardrail-endpoint")
    assert out.strategy == "CANARY" and out.canary_percent == 25 and not out.shadow.enabled
    assert out.shadow.sampling_percent == 50 and out.shadow.duration_seconds == 120
    assert out.artifact_uri == f"s3://{BUCKET}/models/xgb-best/1.2/model.tar.gz"
    assert out.idempotency_key == f"upload#{BUCKET}/models/xgb-best/1.2/model.tar.gz#{out.version_id}"
    assert out.version_id
    assert out.evaluation_key == "models/xgb-best/1.2/evaluation.json"
    assert out.names.model == "xgb-best-1-2-" + out.names.model.rsplit("-", 1)[1]


def test_deployment_json_overrides(s3) -> None:
    key = put_model_files(
        s3,
        "xgb-runnerup",
        "2",
        deployment={
            "strategy": "LINEAR",
            "linear_step_percent": 20,
            "shadow": {"enabled": True, "sampling_percent": 100, "duration_seconds": 30},
        },
    )
    out = parse_upload(ParseUploadInput.model_validate(s3_event(key, version_id=None)), load_settings())
    assert out.strategy == "LINEAR" and out.linear_step_percent == 20
    assert out.shadow.model_dump() == {"enabled": True, "sampling_percent": 100, "duration_seconds": 30}
    assert out.idempotency_key.endswith("#abc123")  # no versioning: the ETag identifies the object


@pytest.mark.parametrize(
    ("event_change", "error", "message"),
    [
        ({"detail-type": "Object Deleted"}, errors.InvalidTrigger, "detail-type"),
        ({"detail": {"bucket": {"name": BUCKET}}}, errors.InvalidTrigger, "detail.object"),
        ({"source": None}, errors.InvalidTrigger, "source"),
    ],
)
def test_malformed_events(s3, event_change, error, message) -> None:
    event = {**s3_event("models/m/1/model.tar.gz"), **event_change}
    with pytest.raises(error, match=message):
        handler()(event, FakeContext())


def test_non_object_input() -> None:
    with pytest.raises(errors.InvalidInput, match="JSON object"):
        handler()(["not", "an", "event"], FakeContext())


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("uploads/m/1/model.tar.gz", "outside the model prefix"),
        ("models/m/model.tar.gz", "must look like"),
        ("models/m/1/extra/model.tar.gz", "must look like"),
        ("models/m/1/model.zip", "must look like"),
        ("models/My_Model/1/model.tar.gz", "model name"),
        ("models/m/1 2/model.tar.gz", "model version"),
        (f"models/{'m' * 70}/1/model.tar.gz", "<= 63"),
    ],
)
def test_bad_keys(key: str, message: str) -> None:
    with pytest.raises(errors.InvalidTrigger, match=message):
        split_key(key, "models/")


def test_wrong_bucket(s3) -> None:
    with pytest.raises(errors.InvalidTrigger, match="not the model bucket"):
        handler()(s3_event("models/m/1/model.tar.gz", bucket="other-bucket"), FakeContext())


def test_missing_evaluation(s3) -> None:
    key = put_model_files(s3, evaluation_doc=False)
    with pytest.raises(errors.ArtifactNotFound, match=r"evaluation\.json does not exist"):
        handler()(event_for(s3, key), FakeContext())


def test_missing_artifact(s3) -> None:
    with pytest.raises(errors.ArtifactNotFound, match=r"model\.tar\.gz does not exist"):
        handler()(s3_event("models/xgb-best/9/model.tar.gz", version_id=None), FakeContext())


@pytest.mark.parametrize(
    ("body", "message"), [(b"", "is empty"), (b"PK\x03\x04 zip, not gzip", "not a gzip")]
)
def test_corrupt_artifact(s3, body: bytes, message: str) -> None:
    key = put_model_files(s3, artifact=body)
    with pytest.raises(errors.InvalidArtifact, match=message):
        handler()(event_for(s3, key), FakeContext())


def test_unknown_strategy_in_deployment_json(s3) -> None:
    key = put_model_files(s3, deployment={"strategy": "BLUE_GREEN"})
    with pytest.raises(errors.InvalidTrigger, match="strategy"):
        handler()(event_for(s3, key), FakeContext())


def test_unparsable_deployment_json(s3) -> None:
    key = put_model_files(s3, deployment="{not json")
    with pytest.raises(errors.InvalidArtifact, match="not valid JSON"):
        handler()(event_for(s3, key), FakeContext())


def test_handler_output_is_json(s3) -> None:
    key = put_model_files(s3)
    out = handler()(
        {"document": {k: v for k, v in event_for(s3, key).items() if k != "execution"}, "execution": "x"},
        FakeContext(),
    )
    assert json.loads(json.dumps(out)) == out
