"""Upload order (the trigger file last) against moto, and the CLI's errors before any training."""

import json

import boto3
import pytest
from moto import mock_aws

from training.artifacts import FILES
from training.cli import main
from training.upload import parse_s3_uri, upload_model


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "xgb-best"
    d.mkdir()
    (d / "evaluation.json").write_text("{}")
    (d / "deployment.json").write_text(json.dumps({"strategy": "ALL_AT_ONCE"}))
    (d / "model.tar.gz").write_bytes(b"\x1f\x8b tarball")
    return d


def test_parse_s3_uri():
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert parse_s3_uri("s3://bucket/models") == ("bucket", "models/")
    assert parse_s3_uri("s3://bucket/models/") == ("bucket", "models/")
    with pytest.raises(ValueError, match="s3://"):
        parse_s3_uri("https://bucket/models")


@mock_aws
def test_upload_puts_the_tarball_last_under_name_and_version(model_dir):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models-bucket")
    order = []
    s3.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **_: order.append(params["Key"]))
    keys = upload_model(model_dir, "s3://models-bucket/models/", version="v1", s3_client=s3,
                        deployment={"strategy": "CANARY", "shadow": {"enabled": True}})
    assert order == [f"models/xgb-best/v1/{f}" for f in FILES] and order[-1].endswith("model.tar.gz")
    assert keys["model.tar.gz"] == "models/xgb-best/v1/model.tar.gz"
    body = s3.get_object(Bucket="models-bucket", Key="models/xgb-best/v1/deployment.json")["Body"].read()
    assert json.loads(body) == {"strategy": "CANARY", "shadow": {"enabled": True}}


def test_upload_rejects_bad_names_and_missing_files(model_dir):
    with pytest.raises(ValueError, match="version"):
        upload_model(model_dir, "s3://b/models/", version="v 1")
    (model_dir / "evaluation.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"evaluation\.json"):
        upload_model(model_dir, "s3://b/models/", version="v1")


def test_cli_reports_bad_data_before_training(tmp_path, capsys):
    bad = tmp_path / "bank.csv"
    bad.write_text("age;job;y\n30;admin.;maybe\n")
    assert main(["--data", str(bad), "--out", str(tmp_path / "models"), "--trials", "2"]) == 2
    assert "missing columns" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()
    assert main(["--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "models")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_cli_rejects_bad_options(tmp_path, capsys):
    assert main(["--trials", "1", "--out", str(tmp_path)]) == 2
    assert main(["--scenarios", "fast", "--out", str(tmp_path)]) == 2
    assert "unknown scenario" in capsys.readouterr().err
