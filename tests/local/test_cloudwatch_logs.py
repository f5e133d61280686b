"""Lambda output and SageMaker container errors in CloudWatch Logs (local/cloudwatch_logs.py), read back with
a real boto3 logs client from a moto server in this process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local.cloudwatch_logs import container_error
from local.lambda_runtime import FunctionConfig, FunctionNotFound, LambdaRuntime

HANDLERS = Path(__file__).parent / "fixtures" / "handlers"
REGION = "us-east-1"
FUNCTIONS = {"cwl-echo": "app.echo", "cwl-die": "app.die"}


def describe(function: str) -> FunctionConfig:
    name = function.rsplit(":", 1)[-1]
    if name not in FUNCTIONS:
        raise FunctionNotFound(function)
    return FunctionConfig(
        name=name,
        arn=f"arn:aws:lambda:{REGION}:123456789012:function:{name}",
        handler=FUNCTIONS[name],
        timeout=5,
        memory_mb=128,
        environment={},
        code_dir=HANDLERS,
    )


@pytest.fixture(scope="module")
def logs() -> Iterator:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield boto3.client("logs", endpoint_url=f"http://{host}:{port}", region_name=REGION)
    server.stop()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    rt = LambdaRuntime({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, tmp_path / "logs", describe=describe)
    yield rt
    rt.stop()


def messages(logs, group: str) -> list[str]:
    return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]


def test_lambda_invocation_lines_land_in_the_function_log_group(logs, runtime):
    first = runtime.invoke("cwl-echo", b"{}")
    second = runtime.invoke("cwl-echo", b"{}")
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/cwl-echo")["logStreams"]
    assert len(streams) == 1  # one warm execution environment, one stream
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", streams[0]["logStreamName"])
    got = messages(logs, "/aws/lambda/cwl-echo")
    for result in (first, second):
        rid = result.request_id
        assert f"START RequestId: {rid} Version: $LATEST" in got
        assert f"END RequestId: {rid}" in got
        assert any(m.startswith(f"REPORT RequestId: {rid}\tDuration: ") for m in got)
    assert got.index(f"START RequestId: {first.request_id} Version: $LATEST") < got.index(
        f"START RequestId: {second.request_id} Version: $LATEST"
    )
    assert len(got) == 6  # each invocation shipped once


def test_handler_output_is_in_cloudwatch_logs(logs, runtime):
    result = runtime.invoke("cwl-die", b"{}")
    got = messages(logs, "/aws/lambda/cwl-die")
    start = got.index(f"START RequestId: {result.request_id} Version: $LATEST")
    assert "about to die" in got[start:]
    assert f"END RequestId: {result.request_id}" in got[start:]


def test_container_error_goes_to_the_endpoint_log_group(logs):
    variant = SimpleNamespace(name="AllTraffic", config_name="cfg-1", started="2026-11-29T00:00:00")
    container_error("cwl-endpoint", variant, "Feature shape mismatch, expected: 62, got 3", REGION)
    container_error("cwl-endpoint", variant, "second failure", REGION)
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/cwl-endpoint")["logStreams"]
    assert [re.fullmatch(r"AllTraffic/i-[0-9a-f]{17}", s["logStreamName"]) is not None for s in streams] == [
        True
    ]
    assert messages(logs, "/aws/sagemaker/Endpoints/cwl-endpoint") == [
        "Feature shape mismatch, expected: 62, got 3",
        "second failure",
    ]
