"""`make aws-smoke` (guardrail/aws_smoke.py): every AWS call of its teardown validated against botocore's models
(Stubber), the cost estimate, and the wiring (Makefile target, samconfig [smoke], README)."""

from __future__ import annotations

import json
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
        {"Name": "bank-marketing-v5-shadow-0123abcd", "Type": "ShadowMode", "Status": "Running", "CreationTime": 0, "LastModifiedTime": 0}]},
        {"StatusEquals": "Running"})  # fmt: skip
    sm.add_response("describe_inference_experiment", {
        "Arn": f"{ARN}:inference-experiment/bank-marketing-v5-shadow-0123abcd", "Name": "bank-marketing-v5-shadow-0123abcd", "Type": "ShadowMode",
        "Status": "Running", "EndpointMetadata": {"EndpointName": EP}, "ModelVariants": [],
        "ShadowModeConfig": {"SourceModelVariantName": "AllTraffic",
                             "ShadowModelVariants": [{"ShadowModelVariantName": "shadow-v5", "SamplingPercentage": 100}]},
    }, {"Name": "bank-marketing-v5-shadow-0123abcd"})  # fmt: skip
    sm.add_response("stop_inference_experiment", {"InferenceExperimentArn": f"{ARN}:inference-experiment/bank-marketing-v5-shadow-0123abcd"}, {
        "Name": "bank-marketing-v5-shadow-0123abcd", "ModelVariantActions": {"AllTraffic": "Retain", "shadow-v5": "Remove"},
        "DesiredState": "Cancelled", "Reason": "aws-smoke teardown"})  # fmt: skip
    sm.add_response("delete_endpoint", {}, {"EndpointName": EP})
    # The scenarios' models and configs are named after the model and version (bank-marketing-v1...), not the
    # endpoint: each is deleted by name; one that was never created answers ValidationException.
    for version in ("v1", "v2", "v3", "v5"):
        model = f"bank-marketing-{version}"
        if version == "v3":
            sm.add_client_error("delete_endpoint_config", "ValidationException", "Could not find endpoint configuration",
                                expected_params={"EndpointConfigName": f"{model}-cfg"})  # fmt: skip
        else:
            sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": f"{model}-cfg"})
        sm.add_response("delete_model", {}, {"ModelName": model})
    sm.add_response("list_endpoint_configs", {"EndpointConfigs": [  # the promoting experiment's, named by SageMaker
        {"EndpointConfigName": f"{EP}-ie-0b2f3b33", "EndpointConfigArn": f"{ARN}:endpoint-config/{EP}-ie-0b2f3b33",
         "CreationTime": 0}]}, {"NameContains": EP})  # fmt: skip
    sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": f"{EP}-ie-0b2f3b33"})
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
    stubs["kms"].add_response("schedule_key_deletion", {}, {"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
                                                            "PendingWindowInDays": 7})  # fmt: skip
    stubs["logs"].add_response("delete_log_group", {}, {"logGroupName": f"/aws/vendedlogs/states/{STACK}-guardrail"})
    for stub in stubs.values():
        stub.activate()
    done = aws_smoke.teardown(clients, STACK, EP, {"ModelBucketName": "b", "TableName": "t", "TopicKeyArn": key})
    for stub in stubs.values():
        stub.assert_no_pending_responses()
    assert f"endpoint {EP}" in done and f"stack {STACK}" in done and "bucket b" in done
    assert "model bank-marketing-v3" in done and "endpoint config bank-marketing-v3-cfg" not in done
    assert "experiment bank-marketing-v5-shadow-0123abcd" in done and f"endpoint config {EP}-ie-0b2f3b33" in done


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


def test_alert_queue_calls_are_valid_aws_requests():
    clients = {n: boto3.client(n, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
               for n in ("sqs", "sns")}  # fmt: skip
    sqs, sns = Stubber(clients["sqs"]), Stubber(clients["sns"])
    topic, url = "arn:aws:sns:us-east-1:123456789012:guardrail-smoke-OutcomeTopic", "https://sqs/123456789012/q"
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:q"
    sqs.add_response("create_queue", {"QueueUrl": url}, {"QueueName": "q"})
    sqs.add_response("get_queue_attributes", {"Attributes": {"QueueArn": queue_arn}},
                     {"QueueUrl": url, "AttributeNames": ["QueueArn"]})  # fmt: skip
    sqs.add_response("set_queue_attributes", {}, None)
    sns.add_response("subscribe", {"SubscriptionArn": f"{topic}:sub"},
                     {"TopicArn": topic, "Protocol": "sqs", "Endpoint": queue_arn, "ReturnSubscriptionArn": True})
    envelope = {"Type": "Notification", "MessageId": "m1", "TopicArn": topic, "Subject": "Guardrail DEPLOYED",
                "Message": '{"outcome": "DEPLOYED", "execution": "e1"}', "Timestamp": "2026-11-29T00:00:00Z"}
    sqs.add_response("receive_message", {"Messages": [{"Body": json.dumps(envelope), "ReceiptHandle": "r"}]},
                     {"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 5})  # fmt: skip
    sqs.add_response("delete_message", {}, {"QueueUrl": url, "ReceiptHandle": "r"})
    sns.add_response("unsubscribe", {}, {"SubscriptionArn": f"{topic}:sub"})
    sqs.add_response("delete_queue", {}, {"QueueUrl": url})
    for stub in (sqs, sns):
        stub.activate()
    alerts = aws_smoke.QueueAlerts(clients.__getitem__, topic, name="q")
    alert = alerts.wait_for(lambda a: (a.payload or {}).get("execution") == "e1", timeout=30)
    assert alert.outcome == "DEPLOYED"
    assert alerts.close() == ["alert queue q"]
    for stub in (sqs, sns):
        stub.assert_no_pending_responses()


def _doc(outcome, mode, previous=None, evidence=None):
    watch = {"evidence": evidence} if evidence else {}
    return {"outcome": outcome, "deployment": {"mode": mode, "previous_config": previous}, "watch": watch}


def test_a_deployed_update_needs_evidence_and_the_first_deployment_creates():
    evidence = {"new_fleet_requests": 240, "old_fleet_requests": 700, "min_requests": 100, "policy": "rollback",
                "since": "2026-11-29T00:00:00Z", "until": "2026-11-29T00:01:00Z", "sufficient": True}
    text, problems = aws_smoke.evidence_problems("successful-update", _doc("DEPLOYED", "UPDATE", "v1-cfg", evidence))
    assert problems == [] and "new fleet served 240 request(s)" in text
    _, problems = aws_smoke.evidence_problems("successful-update", _doc("DEPLOYED", "UPDATE", "v1-cfg"))
    assert problems and "without evidence" in problems[0]
    _, problems = aws_smoke.evidence_problems("successful-update", _doc(
        "DEPLOYED", "UPDATE", "v1-cfg", {**evidence, "new_fleet_requests": 3, "sufficient": False}))
    assert problems and "served 3 request(s)" in problems[0]
    assert aws_smoke.evidence_problems("first-deployment", _doc("DEPLOYED", "CREATE")) == (None, [])
    _, problems = aws_smoke.evidence_problems("first-deployment", _doc("ROLLED_BACK", "UPDATE", "old-cfg"))
    assert problems and "existed already" in problems[0]


def test_the_smoke_run_refuses_an_endpoint_that_exists():
    class Target:
        endpoint_name = EP

        def client(self, service):
            sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            stub = Stubber(sm)
            stub.add_response("describe_endpoint", {
                "EndpointName": EP, "EndpointArn": f"{ARN}:endpoint/{EP}", "EndpointStatus": "InService",
                "CreationTime": 0, "LastModifiedTime": 0, "EndpointConfigName": "bank-marketing-v1-cfg"})  # fmt: skip
            stub.add_response("describe_endpoint_config", {
                "EndpointConfigName": "bank-marketing-v1-cfg", "EndpointConfigArn": f"{ARN}:endpoint-config/c",
                "CreationTime": 0, "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "bank-marketing-v1"}],
            })  # fmt: skip
            stub.activate()
            return sm

    with pytest.raises(aws_smoke.SmokeError, match=f"endpoint {EP} exists already"):
        aws_smoke.run_scenarios(Target(), Path("/nowhere"))
