"""The emulator's fault-injection knob the e2e fault tests use (fast: emulator only, no moto)."""

import json
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.sagemaker.server import FAULTS_PATH, EmulatorServer


def inject(url: str, operation: str, count: int) -> dict:
    request = urllib.request.Request(
        url + FAULTS_PATH, data=json.dumps({"operation": operation, "count": count}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def test_injected_throttles_are_answered_then_calls_succeed():
    with EmulatorServer(port=0) as server:
        sm = boto3.client(
            "sagemaker", endpoint_url=server.url, region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        assert inject(server.url, "ListEndpoints", 2)["pending"] == {"ListEndpoints": 2}
        for _ in range(2):
            with pytest.raises(ClientError) as raised:
                sm.list_endpoints()
            assert raised.value.response["Error"]["Code"] == "ThrottlingException"
        assert sm.list_endpoints()["Endpoints"] == []
        assert inject(server.url, "ListEndpoints", 0)["injected"] == {"ListEndpoints": 2}
