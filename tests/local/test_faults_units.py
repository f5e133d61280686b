"""local/faults.py (issue 12 §8): a moto API answers its own throttling error on demand, and the SDK's standard
retry mode absorbs a few; a function's worker crashes after its handler ran."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local import faults


@pytest.fixture
def hooks():
    faults.install()
    yield faults.FAULTS
    faults.uninstall()
    faults.FAULTS.kills.clear()
    faults.FAULTS.throttles.clear()


def test_moto_apis_answer_a_throttling_error_in_their_own_protocol(hooks):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(port=0, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        once = Config(retries={"mode": "standard", "total_max_attempts": 1})
        kw = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "a", "aws_secret_access_key": "b", "config": once}
        ddb, sns, cw = boto3.client("dynamodb", **kw), boto3.client("sns", **kw), boto3.client("cloudwatch", **kw)
        hooks.arm({"service": "dynamodb", "operation": "ListTables", "count": 1})
        hooks.arm({"service": "sns", "operation": "ListTopics", "count": 1})
        hooks.arm({"service": "cloudwatch", "operation": "DescribeAlarms", "count": 1})
        for call, code in ((ddb.list_tables, "ThrottlingException"), (sns.list_topics, "Throttling"),
                           (cw.describe_alarms, "ThrottlingException")):  # fmt: skip
            with pytest.raises(ClientError) as err:
                call()
            assert err.value.response["Error"]["Code"] == code
            call()  # only the armed number of calls
        hooks.arm({"service": "dynamodb", "operation": "ListTables", "count": 2})
        retried = boto3.client("dynamodb", **(kw | {"config": Config(retries={"mode": "standard", "max_attempts": 4})}))
        retried.list_tables()  # what functions/adapters/_client.py does: standard mode backs off and retries
        assert hooks.snapshot()["injected"] == {"dynamodb:ListTables": 3, "sns:ListTopics": 1, "cloudwatch:DescribeAlarms": 1}
    finally:
        server.stop()
