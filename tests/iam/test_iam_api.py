"""local.iam's API over moto's IAM/STS backends (in-process moto)."""

import json

import boto3
import pytest
from moto import mock_aws

import local.iam as iam

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/locks"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture
def role():
    with mock_aws():
        client = boto3.client("iam", region_name="us-east-1")
        arn = client.create_role(RoleName="acquire-lock-role", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        client.put_role_policy(
            RoleName="acquire-lock-role",
            PolicyName="inline",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"], "Resource": TABLE}]}),
        )
        managed = client.create_policy(
            PolicyName="deny-scan",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:Scan", "Resource": "*"}, {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": "*"}]}),
        )["Policy"]["Arn"]
        client.attach_role_policy(RoleName="acquire-lock-role", PolicyArn=managed)
        yield arn


def test_credentials_principal_and_authorize(role):
    creds = iam.credentials_for_role(role, "AcquireLock")
    assert set(creds) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    principal = iam.principal_for_access_key(creds["AWS_ACCESS_KEY_ID"])
    assert principal == "arn:aws:sts::123456789012:assumed-role/acquire-lock-role/AcquireLock"
    iam.authorize(principal, "dynamodb:GetItem", [TABLE])
    with pytest.raises(iam.AccessDenied) as denied:
        iam.authorize(principal, "dynamodb:DeleteItem", [TABLE])
    assert str(denied.value) == (
        f"User: {principal} is not authorized to perform: dynamodb:DeleteItem on resource: {TABLE} "
        "because no identity-based policy allows the dynamodb:DeleteItem action"
    )


def test_managed_policy_explicit_deny(role):
    with pytest.raises(iam.AccessDenied, match="explicit deny"):
        iam.authorize(role, "dynamodb:Scan", [TABLE])


def test_every_resource_must_be_allowed(role):
    with pytest.raises(iam.AccessDenied, match="table/other"):
        iam.authorize(role, "dynamodb:GetItem", [TABLE, "arn:aws:dynamodb:us-east-1:123456789012:table/other"])


def test_operator_keys_are_no_principal_and_unknown_roles_cannot_be_assumed(role):
    assert iam.principal_for_access_key("testing") is None
    with pytest.raises(iam.AccessDenied):
        iam.credentials_for_role("arn:aws:iam::123456789012:role/nope", "s")
    with pytest.raises(iam.AccessDenied):
        iam.authorize("arn:aws:sts::123456789012:assumed-role/nope/s", "dynamodb:GetItem", [TABLE])


def test_role_sessions_are_reused_then_assumed_again_before_expiry(role):
    from local.iam.sessions import RoleSessions

    sessions = RoleSessions(duration_seconds=3600, refresh_margin=20 * 60)
    first = sessions.get(role, "fn")
    assert sessions.get(role, "fn") is first and sessions.assumed == 1
    expiring = RoleSessions(duration_seconds=900, refresh_margin=20 * 60)  # less than the margin left
    a, b = expiring.get(role, "fn"), expiring.get(role, "fn")
    assert a["AWS_ACCESS_KEY_ID"] != b["AWS_ACCESS_KEY_ID"] and expiring.assumed == 2
    assert iam.principal_for_access_key(b["AWS_ACCESS_KEY_ID"]).endswith(":assumed-role/acquire-lock-role/fn")
    with pytest.raises(iam.AccessDenied):
        sessions.get("", "fn")
