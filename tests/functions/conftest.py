"""Fixtures for the Lambda code's tests. The network is blocked for every test here: moto (`mock_aws`) and
botocore's Stubber answer AWS calls in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fn_support import ENV
from pytest_socket import disable_socket, enable_socket

from functions.adapters._client import reset_clients
from functions.config import reset_settings


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No network (except e2e tests, which talk to local servers); a known Lambda environment; fresh settings
    and boto3 clients per test."""
    for key in list(ENV):
        monkeypatch.setenv(key, ENV[key])
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_settings()
    reset_clients()
    if request.node.get_closest_marker("e2e") is None:
        disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
    reset_settings()
    reset_clients()


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        reset_clients()
        yield
    reset_clients()
