"""The handlers chained the way the state machine chains them, on moto (first deployment, then a duplicate)."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest
from fn_support import BUCKET, ENV, TOPIC, FakeContext, event_for, put_model_files


def _run(step: str, doc: dict) -> dict:
    return importlib.import_module(f"functions.handlers.{step}").handler(doc, FakeContext())


@pytest.fixture
def cloud(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    boto3.client("dynamodb").create_table(
        TableName=ENV["TABLE_NAME"],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    sns.create_topic(Name=TOPIC.rsplit(":", 1)[1])
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)
    return s3, sqs, queue


def test_first_deployment_then_duplicate(cloud) -> None:
    s3, sqs, queue = cloud
    key = put_model_files(s3, "xgb-best", "1")
    doc = event_for(s3, key)
    doc["upload"] = _run("parse_upload", doc)
    doc["lock"] = _run("acquire_lock", doc)
    assert doc["lock"]["acquired"]
    doc["gate"] = _run("quality_gate", doc)
    doc["model"] = _run("create_model", doc)
    doc["endpoint_config"] = _run("create_endpoint_config", doc)
    doc["alarms"] = _run("ensure_alarms", doc)
    doc["deployment"] = _run("deploy", doc)
    assert doc["deployment"]["mode"] == "CREATE"
    for _ in range(5):  # moto's endpoints go InService at once; the loop is the state machine's
        doc["deployment"] = _run("check_deployment", doc)
        if doc["deployment"]["status"] != "IN_PROGRESS":
            break
    assert doc["deployment"]["status"] == "SUCCEEDED"
    assert (
        boto3.client("sagemaker").describe_endpoint(EndpointName=ENV["ENDPOINT_NAME"])["EndpointConfigName"]
        == doc["upload"]["names"]["endpoint_config"]
    )
    doc["outcome"] = "DEPLOYED"
    doc["notification"] = _run("notify", doc)
    assert _run("release_lock", doc)["released"]

    # The same object version again (a re-delivered event): a duplicate, nothing deployed.
    again = event_for(s3, key) | {"execution": {"Name": "exec-2"}}
    again["upload"] = _run("parse_upload", again)
    again["lock"] = _run("acquire_lock", again)
    assert again["lock"]["duplicate"] and not again["lock"]["acquired"]
    assert not _run("release_lock", again)["released"]

    bodies = [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    ]
    assert [b["MessageAttributes"]["outcome"]["Value"] for b in bodies] == ["DEPLOYED"]
