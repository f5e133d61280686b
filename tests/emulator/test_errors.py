"""Bad input gets SageMaker's error codes (botocore raises the same ClientError as on AWS); serving goes on."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from emulator_helpers import create_config, create_model, row, wait_status


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def code_of(call, *args, **kwargs) -> tuple[str, dict]:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return exc.value.response["Error"]["Code"], exc.value.response


@pytest.fixture(scope="module")
def unchecked(emulator):
    """A client that skips botocore's own validation, so the server's checks are what is tested."""
    return boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1",
                        config=Config(parameter_validation=False, retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def serving(sm, request):
    """An endpoint that must keep answering while the others misbehave."""
    name = "errors-healthy-endpoint"
    create_model(sm, "errors-healthy-model", "v1")
    create_config(sm, "errors-healthy-config", "errors-healthy-model", count=1)
    sm.create_endpoint(EndpointName=name, EndpointConfigName="errors-healthy-config")
    assert wait_status(sm, name)["EndpointStatus"] == "InService"
    return name


def assert_still_serving(smr, endpoint: str) -> None:
    r = smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row())
    assert 0.0 <= float(r["Body"].read()) <= 1.0


def test_malformed_json(emulator, smr, serving):
    status, body = raw_post(emulator.url + "/", b"{not json", {
        "X-Amz-Target": "SageMaker.DescribeEndpoint", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400 and body["__type"] == "SerializationException"
    status, body = raw_post(emulator.url + "/", b"[1, 2]", {
        "X-Amz-Target": "SageMaker.DescribeEndpoint", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400 and body["__type"] == "SerializationException"
    assert_still_serving(smr, serving)


def test_unknown_operations(emulator, sm, smr, serving):
    code, _ = code_of(sm.list_training_jobs)  # a real SageMaker operation the emulator does not implement
    assert code == "UnknownOperationException"
    status, body = raw_post(emulator.url + "/", b"{}", {"X-Amz-Target": "SageMaker.NoSuchThing"})
    assert status == 400 and body["__type"] == "UnknownOperationException"
    status, body = raw_post(emulator.url + "/", b"{}", {})
    assert status == 400 and body["__type"] == "UnknownOperationException"
    assert_still_serving(smr, serving)


def test_missing_required_fields_and_bad_values(unchecked, smr, serving):
    code, resp = code_of(unchecked.create_endpoint, EndpointName="no-config")
    assert code == "ValidationException" and "EndpointConfigName" in resp["Error"]["Message"]
    code, resp = code_of(unchecked.create_model, ModelName="x" * 64,
                         PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://b/k"})
    assert code == "ValidationException" and "less than or equal to 63" in resp["Error"]["Message"]
    code, resp = code_of(unchecked.create_model, ModelName="under_score",
                         PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://b/k"})
    assert code == "ValidationException" and "pattern" in resp["Error"]["Message"]
    code, resp = code_of(unchecked.describe_endpoint, EndpointName=123)
    assert code == "ValidationException"
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 4000}}}  # botocore lets 4000 through; AWS does not
    code, resp = code_of(unchecked.update_endpoint, EndpointName=serving, EndpointConfigName="errors-healthy-config",
                         DeploymentConfig=policy)
    assert code == "ValidationException" and "3600" in resp["Error"]["Message"]
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE"}}}
    code, resp = code_of(unchecked.update_endpoint, EndpointName=serving, EndpointConfigName="errors-healthy-config",
                         DeploymentConfig=policy)
    assert code == "ValidationException" and "WaitIntervalInSeconds" in resp["Error"]["Message"]
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 1, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 60}}}}
    code, resp = code_of(unchecked.update_endpoint, EndpointName=serving, EndpointConfigName="errors-healthy-config",
                         DeploymentConfig=policy)
    assert code == "ValidationException" and "50%" in resp["Error"]["Message"]
    code, resp = code_of(unchecked.create_inference_experiment, Name="exp", Type="ShadowMode", RoleArn="arn:aws:iam::123456789012:role/r",
                         EndpointName=serving, ModelVariants=[], ShadowModeConfig={
                             "SourceModelVariantName": "AllTraffic",
                             "ShadowModelVariants": [{"ShadowModelVariantName": "s", "SamplingPercentage": 150}]})
    assert code == "ValidationException"
    assert_still_serving(smr, serving)


def test_missing_resources(sm, smr, serving):
    code, resp = code_of(sm.update_endpoint, EndpointName="no-such-endpoint", EndpointConfigName="errors-healthy-config")
    assert code == "ValidationException" and "Could not find endpoint" in resp["Error"]["Message"]
    code, _ = code_of(sm.update_endpoint, EndpointName=serving, EndpointConfigName="no-such-config")
    assert code == "ValidationException"
    code, _ = code_of(sm.describe_model, ModelName="no-such-model")
    assert code == "ValidationException"
    code, _ = code_of(sm.create_endpoint_config, EndpointConfigName="cfg-without-model", ProductionVariants=[{
        "VariantName": "v", "ModelName": "no-such-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert code == "ValidationException"
    code, _ = code_of(sm.describe_inference_experiment, Name="no-such-experiment")
    assert code == "ResourceNotFound"
    code, resp = code_of(smr.invoke_endpoint, EndpointName="no-such-endpoint", ContentType="text/csv", Body=row())
    assert code == "ValidationError" and resp["ResponseMetadata"]["HTTPStatusCode"] == 400
    code, _ = code_of(smr.invoke_endpoint, EndpointName=serving, TargetVariant="NoSuchVariant",
                      ContentType="text/csv", Body=row())
    assert code == "ValidationError"
    assert_still_serving(smr, serving)


def test_duplicates_are_rejected(sm, serving):
    code, resp = code_of(create_model, sm, "errors-healthy-model", "v1")
    assert code == "ValidationException" and "already existing" in resp["Error"]["Message"]
    code, _ = code_of(sm.create_endpoint, EndpointName=serving, EndpointConfigName="errors-healthy-config")
    assert code == "ValidationException"


def test_rollback_alarm_must_exist(sm, serving):
    code, resp = code_of(sm.update_endpoint, EndpointName=serving, EndpointConfigName="errors-healthy-config",
                         DeploymentConfig={
                             "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                                 "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}},
                             "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "never-created"}]}})
    assert code == "ValidationException" and "never-created" in resp["Error"]["Message"]
    assert sm.describe_endpoint(EndpointName=serving)["EndpointStatus"] == "InService"


def test_artifact_not_a_tarball(sm, smr, names, serving):
    create_model(sm, names("m"), "not-a-tarball")
    create_config(sm, names("c"), names("m"), count=1)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c"))
    desc = wait_status(sm, names("e"))
    assert desc["EndpointStatus"] == "Failed"
    assert "Failed to extract model data archive" in desc["FailureReason"]
    code, _ = code_of(smr.invoke_endpoint, EndpointName=names("e"), ContentType="text/csv", Body=row())
    assert code == "ValidationError"
    code, resp = code_of(sm.update_endpoint, EndpointName=names("e"), EndpointConfigName=names("c"))
    assert code == "ValidationException" and "failed endpoint" in resp["Error"]["Message"]
    assert_still_serving(smr, serving)


def test_missing_artifact_fails_an_update_and_keeps_the_old_config(sm, smr, names, serving):
    sm.create_model(ModelName=names("m"), PrimaryContainer={
        "Image": "i", "ModelDataUrl": "s3://models/models/absent/model.tar.gz"})
    create_config(sm, names("c"), names("m"), count=1)
    sm.update_endpoint(EndpointName=serving, EndpointConfigName=names("c"))
    desc = wait_status(sm, serving, ("InService",))
    assert desc["EndpointConfigName"] == "errors-healthy-config"
    assert "Could not find model data" in desc["FailureReason"]
    assert_still_serving(smr, serving)


@pytest.mark.parametrize("artifact", ["incompatible", "textfile"])
def test_unloadable_model_passes_health_checks_and_answers_500(sm, smr, names, artifact):
    create_model(sm, names("m"), artifact)
    create_config(sm, names("c"), names("m"), count=1)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    code, resp = code_of(smr.invoke_endpoint, EndpointName=names("e"), ContentType="text/csv", Body=row())
    assert code == "ModelError"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert resp["OriginalStatusCode"] == 500
    assert resp["OriginalMessage"].startswith("Unable to load model:")
    assert resp["LogStreamArn"].endswith(f"/aws/sagemaker/Endpoints/{names('e')}")


def test_bad_payloads_are_4xx_model_errors(smr, serving):
    """The 3.0-5 container: unparseable CSV and unsupported types are 415, a payload xgboost rejects is 400."""
    code, resp = code_of(smr.invoke_endpoint, EndpointName=serving, ContentType="text/csv", Body="1,2,abc")
    assert code == "ModelError" and resp["OriginalStatusCode"] == 415
    assert resp["OriginalMessage"].startswith("Loading csv data failed with Exception")
    code, resp = code_of(smr.invoke_endpoint, EndpointName=serving, ContentType="text/csv", Body=",".join(["1"] * 9))
    assert code == "ModelError" and resp["OriginalStatusCode"] == 400  # more columns than the model's features
    assert resp["OriginalMessage"].startswith("Unable to evaluate payload provided")
    code, resp = code_of(smr.invoke_endpoint, EndpointName=serving, ContentType="image/png", Body=b"\x89PNG")
    assert code == "ModelError" and resp["OriginalStatusCode"] == 415
    assert_still_serving(smr, serving)
