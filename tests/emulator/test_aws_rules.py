"""AWS's documented rules, each pinned by a test that fails without it (sources in docs/aws-conformance.md)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import create_config, create_model, wait_status

CANARY = {"BlueGreenUpdatePolicy": {
    "TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                                    "WaitIntervalInSeconds": 0},
    "MaximumExecutionTimeoutInSeconds": 600}}


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture
def live(sm, names):
    """An InService endpoint whose production variant is AllTraffic (model v1)."""
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    create_config(sm, names("c1"), names("m1"), variant="AllTraffic", count=2)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    return names("e")


def test_guarded_update_needs_the_same_variant_name(sm, names, live):
    """deployment-guardrails-exclusions: the new config must have the same variant name as the old one."""
    create_config(sm, names("renamed"), names("m2"), variant="v-model-2", count=2)
    code, message = error_of(sm.update_endpoint, EndpointName=live, EndpointConfigName=names("renamed"),
                             DeploymentConfig=CANARY)
    assert code == "ValidationException" and "same production variant names" in message
    desc = sm.describe_endpoint(EndpointName=live)
    assert desc["EndpointStatus"] == "InService" and desc["EndpointConfigName"] == names("c1")
    assert "PendingDeploymentSummary" not in desc

    create_config(sm, names("same"), names("m2"), variant="AllTraffic", count=2)
    sm.update_endpoint(EndpointName=live, EndpointConfigName=names("same"), DeploymentConfig=CANARY)
    assert wait_status(sm, live, ("InService",))["EndpointConfigName"] == names("same")


def test_retained_deployment_config_is_a_guarded_update_too(sm, names, live):
    create_config(sm, names("same"), names("m2"), variant="AllTraffic", count=2)
    sm.update_endpoint(EndpointName=live, EndpointConfigName=names("same"), DeploymentConfig=CANARY)
    assert wait_status(sm, live, ("InService",))["EndpointConfigName"] == names("same")
    create_config(sm, names("renamed"), names("m1"), variant="Other", count=2)
    code, _ = error_of(sm.update_endpoint, EndpointName=live, EndpointConfigName=names("renamed"),
                       RetainDeploymentConfig=True)
    assert code == "ValidationException"


# --- the SageMaker XGBoost container 3.0-5 (aws/sagemaker-xgboost-container release-3.0.5, xgboost 3.0.5) ---


@pytest.fixture(scope="module")
def served(sm):
    """v1 is saved in xgboost's format (no container column check), v2 is a pickled Booster (checked)."""
    out = {}
    for artifact in ("v1", "v2"):
        name = f"rules-container-{artifact}"
        create_model(sm, name, artifact)
        create_config(sm, name, name, count=1)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        out[artifact] = name
    for name in out.values():
        assert wait_status(sm, name)["EndpointStatus"] == "InService"
    return out


def _invoke(smr, endpoint, body, content_type="text/csv"):
    try:
        r = smr.invoke_endpoint(EndpointName=endpoint, ContentType=content_type, Body=body)
    except ClientError as exc:
        return exc.response["OriginalStatusCode"], exc.response["OriginalMessage"]
    return 200, r["Body"].read().decode()


def test_fewer_columns_are_scored_silently_by_an_xgboost_format_model(smr, boosters, served):
    """serve_utils.predict checks nothing for xgb_format; xgboost predicts with the missing columns as missing."""
    import numpy as np

    status, body = _invoke(smr, served["v1"], "0.5,-1.5,2.0")  # the model has 6 features
    expected = boosters["v1"].predict(__import__("xgboost").DMatrix(np.array([[0.5, -1.5, 2.0]])),
                                      validate_features=False)[0]
    assert status == 200 and float(body) == pytest.approx(float(expected), abs=1e-6)
    status, message = _invoke(smr, served["v1"], ",".join(["1"] * 7))  # one column too many
    assert status == 400 and "Number of columns does not match number of features in booster" in message


def test_pickled_model_allows_exactly_one_column_fewer(smr, served):
    """serve_utils.predict (pkl_format, CSV): columns == features or columns + 1 == features, else 400."""
    assert _invoke(smr, served["v2"], ",".join(["1"] * 5))[0] == 200
    status, message = _invoke(smr, served["v2"], ",".join(["1"] * 4))
    assert status == 400 and message == ("Unable to evaluate payload provided: Feature size of csv inference data 4 "
                                         "is not consistent with feature size of trained model 6.")


def test_payloads_the_container_cannot_parse_are_415(smr, served):
    status, message = _invoke(smr, served["v1"], '{"instances": [[1, 2, 3, 4, 5, 6]]}', "application/json")
    assert status == 415 and message.startswith("application/json is not an accepted ContentType: csv, libsvm")
    status, message = _invoke(smr, served["v1"], "1,2,3\n4,5")  # ragged rows
    assert status == 415 and message.startswith("Loading csv data failed with Exception")


def test_unsupported_accept_is_406_after_scoring(smr, served):
    with pytest.raises(ClientError) as exc:
        smr.invoke_endpoint(EndpointName=served["v1"], ContentType="text/csv", Accept="text/plain",
                            Body=",".join(["1"] * 6))
    assert exc.value.response["OriginalStatusCode"] == 406


# --- limits (botocore 1.44.5's service model and the API reference; checked server-side, as AWS does) ---


@pytest.fixture(scope="module")
def unchecked(emulator):
    """botocore's own validation off: what is tested is the emulator's."""
    import boto3
    from botocore.config import Config

    return boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1",
                        config=Config(parameter_validation=False, retries={"max_attempts": 1}))


def _routing(**over):
    routing = {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 0}
    return {**routing, **over}


@pytest.mark.parametrize(("case", "deployment_config"), [
    ("wait over 3600", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(WaitIntervalInSeconds=3601)}}),
    ("wait below 0", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(WaitIntervalInSeconds=-1)}}),
    ("termination over 3600", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(),
                                                         "TerminationWaitInSeconds": 3601}}),
    ("timeout below 600", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(),
                                                     "MaximumExecutionTimeoutInSeconds": 599}}),
    ("timeout over 28800", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(),
                                                      "MaximumExecutionTimeoutInSeconds": 28801}}),
    ("canary over 50 %", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(
        CanarySize={"Type": "CAPACITY_PERCENT", "Value": 51})}}),
    ("canary of 0", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(
        CanarySize={"Type": "INSTANCE_COUNT", "Value": 0})}}),
    ("linear below 10 %", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(
        Type="LINEAR", LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 9})}}),
    ("linear over 50 %", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing(
        Type="LINEAR", LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 51})}}),
    ("no alarm", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing()},
                  "AutoRollbackConfiguration": {"Alarms": []}}),
    ("eleven alarms", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": _routing()},
                       "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"a{i}"} for i in range(11)]}}),
])
def test_deployment_config_limits(unchecked, sm, names, live, case, deployment_config):
    create_config(sm, names("c2"), names("m2"), variant="AllTraffic", count=2)
    code, _ = error_of(unchecked.update_endpoint, EndpointName=live, EndpointConfigName=names("c2"),
                       DeploymentConfig=deployment_config)
    assert code == "ValidationException", case
    assert sm.describe_endpoint(EndpointName=live)["EndpointStatus"] == "InService"


def _experiment(names, live, **over):
    variants = [{"ModelName": m, "VariantName": v, "InfrastructureConfig": {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}}
        for m, v in ((names("m1"), "AllTraffic"), (names("m2"), "shadow"))]
    return {"Name": names("x"), "Type": "ShadowMode", "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "EndpointName": live, "ModelVariants": variants,
            "ShadowModeConfig": {"SourceModelVariantName": "AllTraffic",
                                 "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 10}]},
            **over}


def test_inference_experiment_lasts_at_most_30_days(sm, unchecked, names, live):
    """API_InferenceExperimentSchedule: "The maximum duration that you can set for an inference experiment is 30 days.\""""
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC) + timedelta(hours=1)
    code, message = error_of(sm.create_inference_experiment, **_experiment(
        names, live, Schedule={"StartTime": start, "EndTime": start + timedelta(days=30, seconds=1)}))
    assert code == "ValidationException" and "30 days" in message
    code, _ = error_of(sm.create_inference_experiment, **_experiment(   # no StartTime: it starts now
        names, live, Schedule={"EndTime": datetime.now(UTC) + timedelta(days=31)}))
    assert code == "ValidationException"
    sm.create_inference_experiment(**_experiment(names, live, Schedule={"StartTime": start,
                                                                        "EndTime": start + timedelta(days=30)}))
    assert sm.describe_inference_experiment(Name=names("x"))["Status"] in ("Creating", "Created")
    sm.stop_inference_experiment(Name=names("x"), ModelVariantActions={"shadow": "Remove"}, DesiredState="Cancelled")


@pytest.mark.parametrize("case", ["two-shadows", "sampling-over-100"])
def test_experiment_limits(unchecked, names, live, case):
    req = _experiment(names, live)
    shadow = req["ShadowModeConfig"]["ShadowModelVariants"]
    if case == "two-shadows":
        shadow.append({"ShadowModelVariantName": "shadow2", "SamplingPercentage": 10})
    else:
        shadow[0]["SamplingPercentage"] = 101
    code, _ = error_of(unchecked.create_inference_experiment, **req)
    assert code == "ValidationException", case


# --- invocation metrics: every 60 s unless enhanced metrics set MetricPublishFrequencyInSeconds (API_MetricsConfig) ---


def test_metrics_are_published_per_period_with_the_period_start_as_timestamp(sm, smr, cloudwatch, names, monkeypatch):
    import time as real_time
    from datetime import UTC, datetime

    from local.sagemaker import metrics

    create_model(sm, names("m"), "v1")
    configs = {"default": None,
               "enhanced-10": {"EnableEnhancedMetrics": True, "MetricPublishFrequencyInSeconds": 10},
               "plain-10": {"MetricPublishFrequencyInSeconds": 10}}  # without enhanced metrics: still 60 s
    for key, mc in configs.items():
        sm.create_endpoint_config(EndpointConfigName=names(key), ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": names("m"), "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}], **({"MetricsConfig": mc} if mc else {}))
        sm.create_endpoint(EndpointName=names(key), EndpointConfigName=names(key))
    for key in configs:
        assert wait_status(sm, names(key))["EndpointStatus"] == "InService"

    base = int(real_time.time()) // 60 * 60  # a minute start (a multiple of 10 too)
    now = [base + 3.0]
    monkeypatch.setattr(metrics, "clock", lambda: now[0])
    for key in configs:
        for i in range(3):
            smr.invoke_endpoint(EndpointName=names(key), ContentType="text/csv", Body=",".join([str(i)] * 6))

    def points(key):
        return cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="Invocations", Period=1, Statistics=["Sum"],
            StartTime=datetime.fromtimestamp(base - 120, UTC), EndTime=datetime.fromtimestamp(base + 120, UTC),
            Dimensions=[{"Name": "EndpointName", "Value": names(key)}, {"Name": "VariantName", "Value": "AllTraffic"},
                        {"Name": "EndpointConfigName", "Value": names(key)}])["Datapoints"]

    real_time.sleep(1.5)  # several flushes: nothing is due yet
    assert all(points(key) == [] for key in configs)
    now[0] = base + 10.5  # the 10-s period is over, the 60-s ones are not
    real_time.sleep(1.5)
    enhanced = points("enhanced-10")
    assert [(p["Timestamp"].timestamp(), p["Sum"]) for p in enhanced] == [(base, 3.0)]
    assert points("default") == [] and points("plain-10") == []
    now[0] = base + 60.5
    real_time.sleep(1.5)
    for key in ("default", "plain-10"):
        assert [(p["Timestamp"].timestamp(), p["Sum"]) for p in points(key)] == [(base, 3.0)], key


def test_metric_publish_frequency_must_be_a_valid_value(sm, names):
    create_model(sm, names("m"), "v1")
    code, _ = error_of(sm.create_endpoint_config, EndpointConfigName=names("c"), ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": names("m"), "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}], MetricsConfig={"EnableEnhancedMetrics": True, "MetricPublishFrequencyInSeconds": 15})
    assert code == "ValidationException"
