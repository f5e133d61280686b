"""`make aws-smoke` (guardrail/aws_smoke.py): every AWS call of its teardown validated against botocore's models
(Stubber), the cost estimate, and the wiring (Makefile target, samconfig [smoke], README)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from guardrail import aws_smoke

ROOT = Path(__file__).resolve().parents[2]
EP = "guardrail-smoke"
STACK = "guardrail-smoke"
ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def test_teardown_calls_are_valid_aws_requests():
    names = ("sagemaker", "cloudwatch", "cloudformation", "s3", "dynamodb", "kms", "logs")
    clients = {n: boto3.client(n, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
               for n in names}  # fmt: skip
    stubs = {n: Stubber(c) for n, c in clients.items()}
    sm, cw, cfn, s3 = stubs["sagemaker"], stubs["cloudwatch"], stubs["cloudformation"], stubs["s3"]
    sm.add_response("list_inference_experiments", {"InferenceExperiments": [
        {"Name": f"{EP}-v5-shadow", "Type": "ShadowMode", "Status": "Running", "CreationTime": 0, "LastModifiedTime": 0}]},
        {"StatusEquals": "Running"})  # fmt: skip
    sm.add_response("describe_inference_experiment", {
        "Arn": f"{ARN}:inference-experiment/{EP}-v5-shadow", "Name": f"{EP}-v5-shadow", "Type": "ShadowMode",
        "Status": "Running", "EndpointMetadata": {"EndpointName": EP}, "ModelVariants": [],
        "ShadowModeConfig": {"SourceModelVariantName": "AllTraffic",
                             "ShadowModelVariants": [{"ShadowModelVariantName": "shadow-v5", "SamplingPercentage": 100}]},
    }, {"Name": f"{EP}-v5-shadow"})  # fmt: skip
    sm.add_response("stop_inference_experiment", {"InferenceExperimentArn": f"{ARN}:inference-experiment/{EP}-v5-shadow"}, {
        "Name": f"{EP}-v5-shadow", "ModelVariantActions": {"AllTraffic": "Retain", "shadow-v5": "Remove"},
        "DesiredState": "Cancelled", "Reason": "aws-smoke teardown"})  # fmt: skip
    sm.add_response("delete_endpoint", {}, {"EndpointName": EP})
    sm.add_response("list_endpoint_configs", {"EndpointConfigs": [
        {"EndpointConfigName": f"{EP}-v1-cfg", "EndpointConfigArn": f"{ARN}:endpoint-config/{EP}-v1-cfg", "CreationTime": 0}]},
        {"NameContains": EP})  # fmt: skip
    sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": f"{EP}-v1-cfg"})
    sm.add_response("list_models", {"Models": [
        {"ModelName": f"{EP}-v1", "ModelArn": f"{ARN}:model/{EP}-v1", "CreationTime": 0}]}, {"NameContains": EP})  # fmt: skip
    sm.add_response("delete_model", {}, {"ModelName": f"{EP}-v1"})
    cw.add_response("describe_alarms", {"MetricAlarms": [{"AlarmName": f"guardrail-{EP}-5xx"}]},
                    {"AlarmNamePrefix": f"guardrail-{EP}-"})  # fmt: skip
    cw.add_response("delete_alarms", {}, {"AlarmNames": [f"guardrail-{EP}-5xx"]})
    cfn.add_response("delete_stack", {}, {"StackName": STACK})
    cfn.add_response("describe_stacks", {"Stacks": [{"StackName": STACK, "CreationTime": 0,
                                                     "StackStatus": "DELETE_COMPLETE"}]}, {"StackName": STACK})  # fmt: skip
    s3.add_response("list_object_versions", {"Versions": [{"Key": "models/a/v1/model.tar.gz", "VersionId": "1"}],
                                             "DeleteMarkers": [], "IsTruncated": False}, {"Bucket": "b"})  # fmt: skip
    s3.add_response("delete_objects", {}, {"Bucket": "b", "Delete": {
        "Objects": [{"Key": "models/a/v1/model.tar.gz", "VersionId": "1"}], "Quiet": True}})  # fmt: skip
    s3.add_response("delete_bucket", {}, {"Bucket": "b"})
    stubs["dynamodb"].add_response("delete_table", {}, {"TableName": "t"})
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    stubs["kms"].add_response("schedule_key_deletion", {}, {"KeyId": key, "PendingWindowInDays": 7})
    stubs["logs"].add_response("delete_log_group", {}, {"logGroupName": f"/aws/vendedlogs/states/{STACK}-guardrail"})
    for stub in stubs.values():
        stub.activate()
    done = aws_smoke.teardown(clients, STACK, EP, {"ModelBucketName": "b", "TableName": "t", "TopicKeyArn": key})
    for stub in stubs.values():
        stub.assert_no_pending_responses()
    assert f"endpoint {EP}" in done and f"stack {STACK}" in done and "bucket b" in done


def test_cost_estimate_counts_two_fleets_during_updates_and_shadow_tests():
    steps = [aws_smoke.Step("first-deployment", "DEPLOYED", "DEPLOYED", 3600),
             aws_smoke.Step("shadow-promote", "PROMOTED", "PROMOTED", 3600, transitions=40)]  # fmt: skip
    assert aws_smoke.estimate_cost(steps, "ml.t2.medium", 1) == pytest.approx(3 * 0.056 + 40 * 0.000025, abs=1e-4)
    assert all(s.ok for s in steps)


def test_make_target_samconfig_env_and_readme():
    assert "aws-smoke:" in (ROOT / "Makefile").read_text()
    smoke = tomllib.loads((ROOT / "samconfig.toml").read_text())["smoke"]["deploy"]["parameters"]
    overrides = dict(item.split("=", 1) for item in smoke["parameter_overrides"])
    assert overrides["InstanceType"] == "ml.t2.medium" and overrides["InstanceCount"] == "1"
    readme = (ROOT / "README.md").read_text()
    assert "make aws-smoke" in readme and "Deploying to AWS" in readme
