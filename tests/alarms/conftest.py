"""A moto server in this process (port 0) shared by the alarm tests; each test uses its own names."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from alarms_support import REGION, new_id
from moto.server import ThreadedMotoServer

from local.alarms import AlarmEvaluator, patch_moto


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_session() -> boto3.session.Session:
    return boto3.session.Session()  # one session: service models are loaded once


@pytest.fixture(scope="module")
def cw(moto_url: str, aws_session):
    return aws_session.client("cloudwatch", endpoint_url=moto_url, region_name=REGION)


@pytest.fixture
def evaluator(moto_url: str, aws_session) -> AlarmEvaluator:
    return AlarmEvaluator(aws_endpoint_url=moto_url, region=REGION, session=aws_session)


@pytest.fixture
def strict_evaluator(moto_url: str, aws_session) -> AlarmEvaluator:
    """Complete periods only, also for high-resolution alarms."""
    return AlarmEvaluator(
        aws_endpoint_url=moto_url, region=REGION, evaluate_partial_period=False, session=aws_session
    )


@pytest.fixture
def uid(cw) -> Iterator[str]:
    """A fresh prefix for this test's metric and alarms (moto's state is shared by the session);
    its alarms are deleted afterwards so later tests do not re-evaluate them."""
    prefix = new_id()
    yield prefix
    names = [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]]
    if names:
        cw.delete_alarms(AlarmNames=names)
