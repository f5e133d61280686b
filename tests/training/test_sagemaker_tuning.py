"""The SageMaker tuning job request, built by the SDK v3, validates offline against botocore's model."""

import copy

import boto3
import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import ParamValidator
from pytest_socket import disable_socket, enable_socket

from training.search_space import SEARCH_SPACE, TUNING_METRIC
from training.versions import container_image

pytest.importorskip("sagemaker")

from training.sagemaker_tuning import TuningJobSpec, launch

pytestmark = pytest.mark.xdist_group("sagemaker-sdk")  # the SDK takes seconds to import: once per worker

SPEC = TuningJobSpec(role_arn="arn:aws:iam::123456789012:role/SageMakerRole", train_s3="s3://bucket/data/train/",
                     validation_s3="s3://bucket/data/validation/", output_s3="s3://bucket/tuning/",
                     job_name="guardrail-xgb-test", max_jobs=20, max_parallel_jobs=2)


def _input_shape():
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateHyperParameterTuningJob").input_shape


@pytest.fixture(scope="module")
def request_params():
    """The dry run with the network switched off: building the request needs no AWS at all."""
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    disable_socket()
    try:
        return launch(SPEC, boto_session=session, dry_run=True)
    finally:
        enable_socket()


def test_request_validates_against_the_service_model(request_params):
    report = ParamValidator().validate(request_params, _input_shape())
    assert not report.has_errors(), report.generate_report()


def test_validator_would_catch_a_broken_request(request_params):
    broken = copy.deepcopy(request_params)
    del broken["TrainingJobDefinition"]["RoleArn"]
    broken["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] = 0
    report = ParamValidator().validate(broken, _input_shape())
    assert report.has_errors()
    with pytest.raises(ParamValidationError):
        raise ParamValidationError(report=report.generate_report())


def test_request_tunes_the_local_search_space_with_the_serving_image(request_params):
    config = request_params["HyperParameterTuningJobConfig"]
    assert request_params["HyperParameterTuningJobName"] == "guardrail-xgb-test"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": TUNING_METRIC}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 2}
    ranges = {r["Name"]: r for kind in config["ParameterRanges"].values() for r in kind}
    assert set(ranges) == {p.name for p in SEARCH_SPACE}
    for p in SEARCH_SPACE:
        assert float(ranges[p.name]["MinValue"]) == p.low and float(ranges[p.name]["MaxValue"]) == p.high
        assert ranges[p.name]["ScalingType"] == ("Logarithmic" if p.log else "Linear")
    definition = request_params["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["TrainingImage"] == container_image("us-east-1")
    assert definition["StaticHyperParameters"]["objective"] == "binary:logistic"
    channels = {c["ChannelName"]: c for c in definition["InputDataConfig"]}
    assert channels["train"]["ContentType"] == "text/csv"
    assert channels["validation"]["DataSource"]["S3DataSource"]["S3Uri"] == SPEC.validation_s3


def test_image_table_matches_the_sdk():
    from sagemaker.core import image_uris

    for region in ("us-east-1", "us-west-2", "eu-west-1"):
        assert container_image(region) == image_uris.retrieve("xgboost", region, "3.0-5")
