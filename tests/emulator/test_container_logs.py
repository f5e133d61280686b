"""A container error of InvokeEndpoint is logged where SageMaker logs it: CloudWatch Logs group
/aws/sagemaker/Endpoints/<endpoint>, stream <variant>/<instance-id> (local/cloudwatch_logs.py)."""

from __future__ import annotations

import re

import boto3
import pytest
from botocore.exceptions import ClientError
from emulator_helpers import create_config, create_model, wait_status


def test_container_error_is_in_the_endpoint_log_group(moto_url, sm, smr, names):
    create_model(sm, names("m"), "v1")
    create_config(sm, names("c"), names("m"), count=1)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    with pytest.raises(ClientError) as exc:
        smr.invoke_endpoint(EndpointName=names("e"), ContentType="text/csv", Body="1,2,abc")
    original = exc.value.response["OriginalMessage"]
    group = exc.value.response["LogStreamArn"].split(":log-group:", 1)[1]
    assert group == f"/aws/sagemaker/Endpoints/{names('e')}"
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert len(streams) == 1 and re.fullmatch(r"AllTraffic/i-[0-9a-f]{17}", streams[0])
    events = logs.filter_log_events(logGroupName=group)["events"]
    assert [e["message"] for e in events] == original.splitlines()
    assert original.startswith("Loading csv data failed")
