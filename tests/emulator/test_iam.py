"""IAM in the emulator (IAM enforced in this process, as in the local cloud): SageMaker acts with the roles it is
given (artifact reads, data capture, rollback alarms, experiments), and every call is authorized for its caller."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from emulator_helpers import BUCKET, IMAGE, create_config, eventually, model_url, wait_status

from local.sagemaker.deployment import ALARMS_UNREADABLE_REASON

ARTIFACTS = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/models/*"]}
ALARMS = {"Effect": "Allow", "Action": "cloudwatch:DescribeAlarms", "Resource": "*"}
CAPTURE = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/iam-capture/*"}
MANAGE = {"Effect": "Allow", "Action": ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig",
                                        "sagemaker:CreateEndpointConfig", "sagemaker:UpdateEndpoint"],
          "Resource": ["arn:aws:sagemaker:us-east-1:123456789012:endpoint/*",
                       "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/*"]}
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module", autouse=True)
def strict_iam(moto_url):
    from local.iam import enforce

    enforce.install()
    yield
    enforce.uninstall()


@pytest.fixture(scope="module")
def iam(moto_url):
    return boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def role(iam, names):
    """role(kind, *statements) → a role ARN with exactly those permissions."""
    def make(kind: str, *statements: dict[str, Any]) -> str:
        name = names(kind)[-60:].strip("-")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        if statements:
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": list(statements)}))
        return arn

    return make


def model(sm, name: str, role_arn: str, artifact: str = "v1") -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn=role_arn,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_url(artifact)})


def test_artifact_is_read_with_the_execution_role(sm, smr, names, role):
    """SageMaker reads model.tar.gz with the model's ExecutionRoleArn: without s3:GetObject the endpoint fails; a
    Failed endpoint cannot be updated or invoked, only deleted (and then created again)."""
    model(sm, names("denied"), role("no-s3"))
    create_config(sm, names("c-denied"), names("denied"), count=1)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c-denied"))
    desc = wait_status(sm, names("e"))
    assert desc["EndpointStatus"] == "Failed"
    assert desc["FailureReason"].startswith(f"Could not access model data at {model_url('v1')}.")
    assert '"s3:GetObject" permissions' in desc["FailureReason"]

    model(sm, names("ok"), role("s3", ARTIFACTS))
    create_config(sm, names("c-ok"), names("ok"), count=1)
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c-ok"))
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        smr.invoke_endpoint(EndpointName=names("e"), ContentType="text/csv", Body="1,2,3,4,5,6")
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    sm.delete_endpoint(EndpointName=names("e"))
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c-ok"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"


def _guarded(alarm: str, wait: int) -> dict[str, Any]:
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE",
                                                                      "WaitIntervalInSeconds": wait},
                                      "MaximumExecutionTimeoutInSeconds": 600},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]}}


def test_rollback_alarms_are_read_with_the_execution_role(sm, cloudwatch, iam, names, role):
    alarm = names("alarm")
    cloudwatch.put_metric_alarm(AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                                Statistic="Average", Period=10, EvaluationPeriods=1, Threshold=0.5,
                                ComparisonOperator="GreaterThanThreshold")
    live = role("live", ARTIFACTS)
    model(sm, names("m1"), live)
    create_config(sm, names("c1"), names("m1"), count=1)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"

    # no cloudwatch:DescribeAlarms: refused when the update is asked for (emulator's choice, AWS is silent)
    model(sm, names("m2"), role("blind", ARTIFACTS), "v2")
    create_config(sm, names("c2"), names("m2"), count=1)
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c2"),
                           DeploymentConfig=_guarded(alarm, 1))
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "cloudwatch:DescribeAlarms" in exc.value.response["Error"]["Message"]

    # the permission goes away during the bake: the update is rolled back, never let through unguarded
    seeing = role("seeing", ARTIFACTS, ALARMS)
    model(sm, names("m3"), seeing, "v2")
    create_config(sm, names("c3"), names("m3"), count=1)
    sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c3"), DeploymentConfig=_guarded(alarm, 30))
    for _ in range(100):
        pv = sm.describe_endpoint(EndpointName=names("e")).get("PendingDeploymentSummary", {}).get("ProductionVariants")
        if pv and pv[0]["VariantStatus"][0]["Status"] == "Baking":
            break
        time.sleep(0.1)
    iam.put_role_policy(RoleName=seeing.rsplit("/", 1)[1], PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [ARTIFACTS]}))
    desc = wait_status(sm, names("e"), ("InService",), timeout=20)
    assert desc["EndpointConfigName"] == names("c1")
    assert desc["FailureReason"].startswith(ALARMS_UNREADABLE_REASON.split("{}")[0] + seeing)


def test_data_capture_is_written_with_the_execution_role(sm, smr, s3, names, role):
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100,
               "DestinationS3Uri": f"s3://{BUCKET}/iam-capture/{names('d')}",
               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
    for kind, statements in (("reader", (ARTIFACTS,)), ("writer", (ARTIFACTS, CAPTURE))):
        model(sm, names(kind), role(kind, *statements))
        create_config(sm, names(f"c-{kind}"), names(kind), count=1,
                      DataCaptureConfig={**capture, "DestinationS3Uri": capture["DestinationS3Uri"] + "/" + kind})
        sm.create_endpoint(EndpointName=names(f"e-{kind}"), EndpointConfigName=names(f"c-{kind}"))
    for kind in ("reader", "writer"):
        assert wait_status(sm, names(f"e-{kind}"))["EndpointStatus"] == "InService"
        smr.invoke_endpoint(EndpointName=names(f"e-{kind}"), ContentType="text/csv", Body="1,2,3,4,5,6")

    def keys(kind):
        prefix = f"iam-capture/{names('d')}/{kind}/"
        return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]

    eventually(lambda: assert_one(keys("writer")))
    assert keys("reader") == []  # the role may not write there: the capture is lost (logged)


def assert_one(keys):
    assert len(keys) == 1, keys


def _experiment(sm, names, endpoint, role_arn):
    variants = [{"ModelName": m, "VariantName": v, "InfrastructureConfig": {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}}
        for m, v in ((names("prod"), "AllTraffic"), (names("shadow"), "shadow"))]
    sm.create_inference_experiment(
        Name=names("x"), Type="ShadowMode", RoleArn=role_arn, EndpointName=endpoint, ModelVariants=variants,
        ShadowModeConfig={"SourceModelVariantName": "AllTraffic",
                          "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}]})


def test_inference_experiment_manages_the_endpoint_with_its_role(sm, names, role):
    live = role("live", ARTIFACTS)
    model(sm, names("prod"), live)
    model(sm, names("shadow"), live, "v2")
    create_config(sm, names("c"), names("prod"), count=1)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"

    _experiment(sm, names, names("e"), role("reader-only", ARTIFACTS))
    desc = eventually(lambda: finished(sm, names("x")))
    assert desc["Status"] == "Cancelled" and "sagemaker:" in desc["StatusReason"]
    assert sm.describe_endpoint(EndpointName=names("e"))["EndpointConfigName"] == names("c")
    sm.delete_inference_experiment(Name=names("x"))

    _experiment(sm, names, names("e"), role("manager", ARTIFACTS, MANAGE))
    assert eventually(lambda: running(sm, names("x")))["Status"] == "Running"
    sm.stop_inference_experiment(Name=names("x"), ModelVariantActions={"shadow": "Remove"})


def finished(sm, name):
    desc = sm.describe_inference_experiment(Name=name)
    assert desc["Status"] in ("Cancelled", "Completed"), desc["Status"]
    return desc


def running(sm, name):
    desc = sm.describe_inference_experiment(Name=name)
    assert desc["Status"] == "Running", desc["Status"]
    return desc


# --- every call is authorized for its caller ---


def as_caller(emulator, service: str, role_arn: str) -> Any:
    from local.iam import credentials_for_role

    creds = credentials_for_role(role_arn, "caller")
    return boto3.client(service, endpoint_url=emulator.url, region_name="us-east-1",
                        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=creds["AWS_SESSION_TOKEN"], config=Config(retries={"max_attempts": 1}))


def denied(call, **kwargs) -> tuple[int, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    err = exc.value.response
    assert err["Error"]["Code"] == "AccessDeniedException", err
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_calls_are_authorized_for_the_caller(emulator, sm, names, role):
    execution = role("execution", ARTIFACTS)
    model(sm, names("m"), execution)
    create_config(sm, names("c"), names("m"), count=1)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    endpoint_arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{names('e')}"
    model_arns = "arn:aws:sagemaker:us-east-1:123456789012:model/*"
    caller = role("caller",
                  {"Effect": "Allow", "Action": "sagemaker:DescribeEndpoint", "Resource": endpoint_arn},
                  {"Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": model_arns},
                  {"Effect": "Allow", "Action": "iam:PassRole", "Resource": execution,
                   "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}})
    client = as_caller(emulator, "sagemaker", caller)
    assert client.describe_endpoint(EndpointName=names("e"))["EndpointStatus"] == "InService"
    status, message = denied(client.delete_endpoint, EndpointName=names("e"))
    assert status == 400 and "sagemaker:DeleteEndpoint" in message and endpoint_arn in message
    assert names("e") in sm.list_endpoints(NameContains=names("e"))["Endpoints"][0]["EndpointName"]  # untouched
    # CreateModel needs iam:PassRole on the ExecutionRoleArn (to sagemaker.amazonaws.com)
    client.create_model(ModelName=names("mine"), ExecutionRoleArn=execution,
                        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_url("v1")})
    other = role("other", ARTIFACTS)
    status, message = denied(client.create_model, ModelName=names("theirs"), ExecutionRoleArn=other,
                             PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_url("v1")})
    assert "iam:PassRole" in message and other in message
    # the runtime too: sagemaker:InvokeEndpoint on the endpoint
    status, message = denied(as_caller(emulator, "sagemaker-runtime", caller).invoke_endpoint,
                             EndpointName=names("e"), ContentType="text/csv", Body="1,2,3,4,5,6")
    assert status == 403 and "sagemaker:InvokeEndpoint" in message


def test_credentials_moto_never_issued_are_rejected(emulator, names, role):
    caller = role("caller", {"Effect": "Allow", "Action": "sagemaker:ListEndpoints", "Resource": "*"})
    client = as_caller(emulator, "sagemaker", caller)
    client.list_endpoints()
    forged = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1",
                          aws_access_key_id="ASIAFORGEDFORGED0000", aws_secret_access_key="x",
                          aws_session_token="nope", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as exc:
        forged.list_endpoints()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
