"""Strict IAM on moto's HTTP server: assumed-role requests are authorized with AWS's action names,
resource ARNs and condition keys; the operator's `testing` credentials stay admin."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

import local.iam as iam
from local.iam import enforce

ACCOUNT = "123456789012"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module")
def server():
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    enforce.install()
    try:
        yield f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    finally:
        enforce.uninstall()
        moto.stop()


def admin(service, url):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing")


def as_role(service, url, creds):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"],
    )


def make_role(url, name, statements):
    client = admin("iam", url)
    arn = client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    client.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return iam.credentials_for_role(arn, name)


def code(exc_info):
    return exc_info.value.response["Error"]["Code"], exc_info.value.response["Error"].get("Message", "")


def test_dynamodb_item_actions_on_the_table_arn(server):
    admin("dynamodb", server).create_table(
        TableName="locks", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST"
    )
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/locks"
    creds = make_role(server, "ddb-role", [{"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"], "Resource": table}])
    ddb = as_role("dynamodb", server, creds)
    ddb.put_item(TableName="locks", Item={"pk": {"S": "a"}})
    assert ddb.get_item(TableName="locks", Key={"pk": {"S": "a"}})["Item"]
    with pytest.raises(ClientError) as denied:
        ddb.delete_item(TableName="locks", Key={"pk": {"S": "a"}})
    assert code(denied) == (
        "AccessDeniedException",
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/ddb-role/ddb-role is not authorized to perform: dynamodb:DeleteItem "
        f"on resource: {table} because no identity-based policy allows the dynamodb:DeleteItem action",
    )
    admin("dynamodb", server).delete_item(TableName="locks", Key={"pk": {"S": "a"}})  # the operator is admin


def test_s3_object_and_bucket_actions(server):
    admin("s3", server).create_bucket(Bucket="models")
    admin("s3", server).put_object(Bucket="models", Key="models/m/v1/evaluation.json", Body=b"{}")
    creds = make_role(server, "s3-role", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::models/models/*"}])
    s3 = as_role("s3", server, creds)
    assert s3.get_object(Bucket="models", Key="models/m/v1/evaluation.json")["Body"].read() == b"{}"
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="models", Key="models/m/v1/x", Body=b"x")
    assert code(denied)[0] == "AccessDenied" and "s3:PutObject on resource: arn:aws:s3:::models/models/m/v1/x" in code(denied)[1]
    with pytest.raises(ClientError) as denied:
        s3.list_objects_v2(Bucket="models", Prefix="models/")
    assert "s3:ListBucket on resource: arn:aws:s3:::models " in code(denied)[1]
    with pytest.raises(ClientError):
        s3.get_object(Bucket="models", Key="data-capture/x")


def test_cloudwatch_namespace_condition_and_alarm_arns(server):
    creds = make_role(
        server,
        "cw-role",
        [
            {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": "Guardrail/CanaryVerdict"}}},
            {"Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"], "Resource": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:guardrail-ep-*"},
        ],
    )
    cw = as_role("cloudwatch", server, creds)
    cw.put_metric_data(Namespace="Guardrail/CanaryVerdict", MetricData=[{"MetricName": "Reject", "Value": 1}])
    with pytest.raises(ClientError) as denied:
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "Reject", "Value": 1}])
    assert "cloudwatch:PutMetricData on resource: *" in code(denied)[1]
    cw.describe_alarms(AlarmNames=["guardrail-ep-5xx"])
    with pytest.raises(ClientError) as denied:
        cw.describe_alarms(AlarmNames=["other-alarm"])
    assert "alarm:other-alarm" in code(denied)[1]


def test_sns_publish_on_an_encrypted_topic_needs_the_key(server):
    key = admin("kms", server).create_key()["KeyMetadata"]["Arn"]
    topic = admin("sns", server).create_topic(Name="outcomes", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    only_sns = as_role("sns", server, make_role(server, "sns-only", [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}]))
    with pytest.raises(ClientError) as denied:
        only_sns.publish(TopicArn=topic, Message="m")
    assert code(denied)[0] == "AuthorizationError" and "kms:GenerateDataKey" in code(denied)[1]
    both = as_role("sns", server, make_role(server, "sns-kms", [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}, {"Effect": "Allow", "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": key}]))
    assert both.publish(TopicArn=topic, Message="m")["MessageId"]


def test_bad_and_expired_session_tokens_are_rejected(server):
    creds = make_role(server, "tok-role", [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}])
    assert as_role("sts", server, creds).get_caller_identity()["Arn"].endswith(":assumed-role/tok-role/tok-role")
    with pytest.raises(ClientError) as rejected:
        as_role("sns", server, {**creds, "AWS_SESSION_TOKEN": "forged"}).list_topics()
    assert code(rejected)[0] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as rejected:
        as_role("sns", server, {**creds, "AWS_ACCESS_KEY_ID": "ASIAUNKNOWNKEY000000"}).list_topics()
    assert code(rejected)[0] == "InvalidClientTokenId"


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(server):
    admin("s3", server).create_bucket(Bucket="nolist")
    get_only = as_role("s3", server, make_role(server, "get-only", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::nolist/*"}]))
    with pytest.raises(ClientError) as denied:
        get_only.get_object(Bucket="nolist", Key="missing.json")
    assert code(denied)[0] == "AccessDenied" and "s3:ListBucket" in code(denied)[1]
    with pytest.raises(ClientError) as denied:
        get_only.head_object(Bucket="nolist", Key="missing.json")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with_list = as_role(
        "s3",
        server,
        make_role(server, "get-list", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::nolist/*"}, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::nolist"}]),
    )
    with pytest.raises(ClientError) as missing:
        with_list.get_object(Bucket="nolist", Key="missing.json")
    assert code(missing)[0] == "NoSuchKey"


def test_an_expired_session_is_rejected(server):
    import time

    make_role(server, "short-role", [{"Effect": "Allow", "Action": "sns:*", "Resource": "*"}])
    creds = iam.credentials_for_role(f"arn:aws:iam::{ACCOUNT}:role/short-role", "short", duration_seconds=1)
    time.sleep(1.5)
    with pytest.raises(ClientError) as rejected:
        as_role("sns", server, creds).list_topics()
    assert code(rejected)[0] == "ExpiredToken"
