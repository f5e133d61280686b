"""moto (S3, CloudWatch, SNS) + the SageMaker emulator + the real alarm evaluator, in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import xgboost as xgb
from botocore.config import Config
from guardrails_support import BUCKET, slowed, tarball, train, write_holdout
from moto.server import ThreadedMotoServer

from local.alarms import AlarmEvaluator, patch_moto
from local.sagemaker.server import EmulatorServer

REGION = "us-east-1"


def _ubj(booster: xgb.Booster) -> bytes:
    return bytes(booster.save_raw("ubj"))


@pytest.fixture(scope="session")
def artifacts() -> dict[str, bytes]:
    return {
        "v1": tarball({"xgboost-model": _ubj(train(1))}),
        "v3": tarball({"xgboost-model": _ubj(train(3))}),
        # the container cannot load this: 5XX "Unable to load model" on every request, as in AWS's sample
        "incompatible": tarball({"xgboost-model": b"model saved by an incompatible framework version\n"}),
    }


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    patch_moto()  # before any alarm exists: alarms start INSUFFICIENT_DATA, history is recorded
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3(moto_url: str, artifacts: dict[str, bytes]) -> Any:
    client = boto3.client(
        "s3", endpoint_url=moto_url, region_name=REGION, config=Config(s3={"addressing_style": "path"})
    )
    client.create_bucket(Bucket=BUCKET)
    for name, data in artifacts.items():
        client.put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=data)
    return client


@pytest.fixture(scope="module")
def slow_artifact(s3: Any) -> str:
    """v1's answers, ~10 ms a row (a few seconds to build, so only the tests that need it pay)."""
    s3.put_object(
        Bucket=BUCKET, Key="models/slow/model.tar.gz", Body=tarball({"xgboost-model": _ubj(slowed(train(1)))})
    )
    return "slow"


@pytest.fixture(scope="module")
def emulator(moto_url: str, s3: Any) -> Iterator[EmulatorServer]:
    server = EmulatorServer(
        aws_endpoint_url=moto_url, provisioning_delay=0.2, alarm_poll_interval=0.2, flush_interval=0.5
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def evaluator(moto_url: str) -> Iterator[AlarmEvaluator]:
    """Running only while a module that asks for it runs: moto's state is process-wide, and other areas'
    tests in this worker set alarm states by hand."""
    with AlarmEvaluator(aws_endpoint_url=moto_url, region=REGION, interval=0.5) as running:
        yield running


@pytest.fixture(scope="module")
def cloudwatch(moto_url: str) -> Any:
    return boto3.client("cloudwatch", endpoint_url=moto_url, region_name=REGION)


@pytest.fixture(scope="module")
def sm(emulator: EmulatorServer) -> Any:
    return boto3.client(
        "sagemaker", endpoint_url=emulator.url, region_name=REGION, config=Config(retries={"max_attempts": 1})
    )


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_holdout(tmp_path_factory.mktemp("traffic") / "holdout.csv")


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Unique SageMaker-valid names per test (the emulator and moto are shared by the session)."""
    import time

    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:28].strip("-")
    stamp = str(int(time.time() * 1000) % 10_000_000)
    return lambda kind: f"{base}-{kind}-{stamp}"[:63].strip("-").replace("--", "-")
