"""The local IAM evaluator: AWS's identity-policy semantics (no moto)."""

import pytest

from local.iam.policy import Decision, UnsupportedCondition, arn_like, evaluate

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/guardrail-locks"


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(documents, action, resource, context=None):
    ctx = {k.lower(): v if isinstance(v, list) else [v] for k, v in (context or {}).items()}
    return evaluate(documents, action, resource, ctx)


def test_allow_needs_a_matching_action_and_resource():
    policy = doc(allow(["dynamodb:PutItem", "dynamodb:GetItem"], TABLE))
    assert decide([policy], "dynamodb:GetItem", TABLE) is Decision.ALLOW
    assert decide([policy], "dynamodb:DeleteItem", TABLE) is Decision.NEUTRAL
    assert decide([policy], "dynamodb:GetItem", TABLE + "-other") is Decision.NEUTRAL
    assert decide([], "dynamodb:GetItem", TABLE) is Decision.NEUTRAL


def test_explicit_deny_wins_across_documents():
    assert decide([doc(allow("s3:*")), doc(deny("s3:DeleteObject"))], "s3:DeleteObject", "arn:aws:s3:::b/k") is Decision.DENY
    assert decide([doc(allow("s3:*")), doc(deny("s3:DeleteObject"))], "s3:GetObject", "arn:aws:s3:::b/k") is Decision.ALLOW


def test_action_wildcards_are_case_insensitive_resources_are_not():
    policy = doc(allow("sagemaker:Describe*", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/guard-?"))
    assert decide([policy], "sagemaker:describeendpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/guard-1") is Decision.ALLOW
    assert decide([policy], "sagemaker:DescribeEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/guard-12") is Decision.NEUTRAL
    assert decide([policy], "sagemaker:DescribeEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/GUARD-1") is Decision.NEUTRAL
    assert decide([policy], "sagemaker:UpdateEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/guard-1") is Decision.NEUTRAL


def test_not_action_and_not_resource():
    policy = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide([policy], "s3:GetObject", "arn:aws:s3:::b/k") is Decision.ALLOW
    assert decide([policy], "iam:PassRole", "arn:aws:iam::123456789012:role/r") is Decision.NEUTRAL
    denier = doc(allow("s3:*"), {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::models/*"})
    assert decide([denier], "s3:GetObject", "arn:aws:s3:::models/a") is Decision.ALLOW
    assert decide([denier], "s3:GetObject", "arn:aws:s3:::other/a") is Decision.DENY


def test_string_equals_condition_iam_passed_to_service():
    role = "arn:aws:iam::123456789012:role/sm"
    policy = doc(allow("iam:PassRole", role, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
    assert decide([policy], "iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}) is Decision.ALLOW
    assert decide([policy], "iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}) is Decision.NEUTRAL
    assert decide([policy], "iam:PassRole", role) is Decision.NEUTRAL  # missing key: no match


def test_string_like_condition_with_several_values_is_an_or():
    policy = doc(allow("cloudwatch:PutMetricData", Condition={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}}))
    assert decide([policy], "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/SageMaker"}) is Decision.ALLOW
    assert decide([policy], "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}) is Decision.ALLOW
    assert decide([policy], "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Guardrail/CanaryVerdict"}) is Decision.NEUTRAL


def test_condition_keys_are_case_insensitive_and_blocks_are_anded():
    policy = doc(
        allow(
            "sns:Publish",
            Condition={"StringEquals": {"AWS:SourceAccount": "123456789012"}, "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:123456789012:alarm:*"}},
        )
    )
    good = {"aws:sourceaccount": "123456789012", "aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"}
    assert decide([policy], "sns:Publish", "t", good) is Decision.ALLOW
    assert decide([policy], "sns:Publish", "t", {**good, "aws:sourceaccount": "999999999999"}) is Decision.NEUTRAL
    assert decide([policy], "sns:Publish", "t", {"aws:sourceaccount": "123456789012"}) is Decision.NEUTRAL


def test_if_exists_and_negated_operators_on_a_missing_key():
    policy = doc(allow("s3:PutObject", Condition={"StringEqualsIfExists": {"s3:x-amz-acl": "private"}}))
    assert decide([policy], "s3:PutObject", "k") is Decision.ALLOW
    assert decide([policy], "s3:PutObject", "k", {"s3:x-amz-acl": "public-read"}) is Decision.NEUTRAL
    negated = doc(allow("s3:PutObject", Condition={"StringNotEquals": {"s3:x-amz-acl": ["public-read", "public-read-write"]}}))
    assert decide([negated], "s3:PutObject", "k") is Decision.ALLOW
    assert decide([negated], "s3:PutObject", "k", {"s3:x-amz-acl": "private"}) is Decision.ALLOW
    assert decide([negated], "s3:PutObject", "k", {"s3:x-amz-acl": "public-read"}) is Decision.NEUTRAL


def test_deny_with_condition_and_bool_and_null():
    policy = doc(allow("s3:*"), deny("s3:*", Condition={"Bool": {"aws:SecureTransport": False}}))
    assert decide([policy], "s3:GetObject", "k", {"aws:SecureTransport": "true"}) is Decision.ALLOW
    assert decide([policy], "s3:GetObject", "k", {"aws:SecureTransport": "false"}) is Decision.DENY
    null = doc(allow("s3:GetObject", Condition={"Null": {"s3:VersionId": "false"}}))
    assert decide([null], "s3:GetObject", "k", {"s3:VersionId": "v1"}) is Decision.ALLOW
    assert decide([null], "s3:GetObject", "k") is Decision.NEUTRAL


def test_arn_like_matches_part_by_part():
    assert arn_like("arn:aws:sagemaker:*:123456789012:*", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e")
    assert not arn_like("arn:aws:sagemaker:*:123456789012:*", "arn:aws:sagemaker:us-east-1:999999999999:endpoint/e")
    assert not arn_like("arn:aws:s3:::b/*", "not-an-arn")
    policy = doc(allow("iam:PassRole", Condition={"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/r"}}))
    assert decide([policy], "iam:PassRole", "x", {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/r"}) is Decision.ALLOW
    assert decide([policy], "iam:PassRole", "x", {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/q"}) is Decision.NEUTRAL


def test_an_unknown_condition_operator_is_an_error_not_an_allow():
    with pytest.raises(UnsupportedCondition):
        decide([doc(allow("s3:*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}))], "s3:GetObject", "k")


def test_json_documents_are_accepted():
    import json

    assert decide([json.dumps(doc(allow("sns:Publish", "arn:aws:sns:us-east-1:123456789012:t")))], "sns:Publish", "arn:aws:sns:us-east-1:123456789012:t") is Decision.ALLOW
