"""AWS's deployment-guardrails samples (canary, linear and rolling notebooks), call for call, against the emulator.

Three models (the second one incompatible), three endpoint configs, an endpoint, the two rollback alarms,
an update that rolls back, then a successful update with RetainDeploymentConfig. Times are shortened.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import FAST_METRICS, IMAGE, ROLE, eventually, metric_stats, model_url, row, wait_status

DEPLOYMENTS = {
    "canary": {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 3},
    "linear": {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 33},
               "WaitIntervalInSeconds": 2},
    # Update-SageMaker-Inference-endpoint-using-rolling-deployment.ipynb: "33% of whole fleet capacity (33% * 3 = 1
    # instance)", no RollbackMaximumBatchSize (the whole old fleet comes back at once)
    "rolling": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 33}, "WaitIntervalInSeconds": 2,
                "MaximumExecutionTimeoutInSeconds": 1800},
}


def create_auto_rollback_alarm(cw, alarm_name, endpoint_name, variant_name, metric_name, statistic, threshold):
    cw.put_metric_alarm(
        AlarmName=alarm_name, AlarmDescription="Test SageMaker endpoint deployment auto-rollback alarm",
        ActionsEnabled=False, Namespace="AWS/SageMaker", MetricName=metric_name, Statistic=statistic,
        Dimensions=[{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant_name}],
        Period=60, EvaluationPeriods=1, Threshold=threshold,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")


def invoke_endpoint(smr, endpoint_name, max_invocations, wait_interval_sec=0.02, on_error=None):
    """The notebook's traffic loop: one CSV row per request, '.' or 'E' per result."""
    out = []
    for i in range(max_invocations):
        try:
            r = smr.invoke_endpoint(EndpointName=endpoint_name, ContentType="text/csv", Body=row(i))
            r["Body"].read()
            out.append(".")
        except ClientError as exc:
            out.append("E")
            if on_error:
                on_error(exc)
        time.sleep(wait_interval_sec)
    return "".join(out)


def sum_invocations(cw, endpoint, variant, config):
    return metric_stats(cw, "Invocations", endpoint, variant, config)["Sum"]


@pytest.mark.parametrize("kind", ["canary", "linear", "rolling"])
def test_guardrails_sample_rollback_then_success(sm, smr, cloudwatch, names, kind):
    ts = names("x")[-7:]
    model_name, model_name2, model_name3 = (f"DEMO-xgb-churn-pred{s}-{kind}-{ts}" for s in ("", "2", "3"))
    sm.create_model(ModelName=model_name, ExecutionRoleArn=ROLE,
                    Containers=[{"Image": IMAGE, "ModelDataUrl": model_url("v1")}])
    sm.create_model(ModelName=model_name2, ExecutionRoleArn=ROLE,
                    Containers=[{"Image": IMAGE, "ModelDataUrl": model_url("incompatible")}])
    sm.create_model(ModelName=model_name3, ExecutionRoleArn=ROLE,
                    Containers=[{"Image": IMAGE, "ModelDataUrl": model_url("v2")}])
    configs = [f"DEMO-EpConfig-{i}-{kind}-{ts}" for i in (1, 2, 3)]
    for cfg, model in zip(configs, [model_name, model_name2, model_name3], strict=True):
        sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.xlarge",
            "InitialInstanceCount": 3}],
            MetricsConfig=FAST_METRICS)  # not in the notebook: 10-s metrics so the test need not wait a minute
    endpoint_name = f"DEMO-Deployment-Guardrails-{kind}-{ts}"
    sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=configs[0])
    assert sm.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"] == "Creating"
    desc = wait_status(sm, endpoint_name)
    assert desc["EndpointStatus"] == "InService"
    assert "LastDeploymentConfig" not in desc
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 3

    error_alarm = f"TestAlarm-5XXErrors-{endpoint_name}"
    latency_alarm = f"TestAlarm-ModelLatency-{endpoint_name}"
    create_auto_rollback_alarm(cloudwatch, error_alarm, endpoint_name, "AllTraffic", "Invocation5XXErrors", "Average", 1)
    create_auto_rollback_alarm(cloudwatch, latency_alarm, endpoint_name, "AllTraffic", "ModelLatency", "Average", 10000)
    assert invoke_endpoint(smr, endpoint_name, 20) == "." * 20

    deployment_config = {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": DEPLOYMENTS[kind],
                                  "TerminationWaitInSeconds": 1, "MaximumExecutionTimeoutInSeconds": 1800},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": error_alarm}, {"AlarmName": latency_alarm}]},
    }
    if kind == "rolling":
        del deployment_config["BlueGreenUpdatePolicy"]
        deployment_config["RollingUpdatePolicy"] = DEPLOYMENTS[kind]
    sm.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=configs[1],
                       DeploymentConfig=deployment_config)
    desc = sm.describe_endpoint(EndpointName=endpoint_name)
    assert desc["EndpointStatus"] == "Updating"
    assert desc["EndpointConfigName"] == configs[0]
    assert desc["LastDeploymentConfig"] == deployment_config
    assert desc["PendingDeploymentSummary"]["EndpointConfigName"] == configs[1]

    errors: list[ClientError] = []

    def trip(exc: ClientError) -> None:
        # the alarm evaluator's job in the local cloud; here: "wait until you start seeing errors"
        errors.append(exc)
        if len(errors) == 3:
            cloudwatch.set_alarm_state(AlarmName=error_alarm, StateValue="ALARM", StateReason="5XX observed")

    dots = invoke_endpoint(smr, endpoint_name, 200, on_error=trip)
    assert "E" in dots and "." in dots, dots  # a canary/step takes part of the traffic, not all
    err = errors[0].response
    assert err["Error"]["Code"] == "ModelError"
    assert err["OriginalStatusCode"] == 500
    assert err["OriginalMessage"].startswith("Unable to load model")

    desc = wait_status(sm, endpoint_name)
    assert desc["EndpointStatus"] == "InService"
    assert desc["EndpointConfigName"] == configs[0]  # rolled back
    assert desc["FailureReason"] == (
        f"One or more configured alarm for automatic rollback deployment is in ALARM state: [{error_alarm}].")
    assert desc["LastDeploymentConfig"] == deployment_config
    assert "PendingDeploymentSummary" not in desc
    assert invoke_endpoint(smr, endpoint_name, 20) == "." * 20  # blue serves everything again

    cloudwatch.set_alarm_state(AlarmName=error_alarm, StateValue="OK", StateReason="reset")
    sm.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=configs[2], RetainDeploymentConfig=True)
    desc = sm.describe_endpoint(EndpointName=endpoint_name)
    assert desc["EndpointStatus"] == "Updating"
    assert desc["FailureReason"].startswith("One or more configured alarm")  # survives into the next update
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=configs[2], RetainDeploymentConfig=True)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot update in-progress endpoint" in exc.value.response["Error"]["Message"]

    baking = None
    for _ in range(100):
        d = sm.describe_endpoint(EndpointName=endpoint_name)
        statuses = [s for v in d.get("PendingDeploymentSummary", {}).get("ProductionVariants", [])
                    for s in v.get("VariantStatus", [])]
        if statuses and statuses[0]["Status"] == "Baking":
            baking = statuses[0]["StatusMessage"]
            break
        time.sleep(0.05)
    assert baking is not None and baking.startswith(
        f"Baking for {DEPLOYMENTS[kind]['WaitIntervalInSeconds']} seconds (WaitIntervalInSeconds) with traffic enabled on")
    assert invoke_endpoint(smr, endpoint_name, 60) == "." * 60
    desc = wait_status(sm, endpoint_name, timeout=60)
    assert desc["EndpointStatus"] == "InService"
    assert desc["EndpointConfigName"] == configs[2]
    assert "PendingDeploymentSummary" not in desc

    def metrics_flushed():
        # traffic really went to the incompatible green fleet (every request to it failed), tagged with its config
        assert sum_invocations(cloudwatch, endpoint_name, "AllTraffic", configs[1]) == dots.count("E")
        assert sum_invocations(cloudwatch, endpoint_name, "AllTraffic", configs[2]) > 0

    eventually(metrics_flushed)

    # cleanup, as the notebook does
    sm.delete_endpoint(EndpointName=endpoint_name)
    for cfg in configs:
        sm.delete_endpoint_config(EndpointConfigName=cfg)
    for m in (model_name, model_name2, model_name3):
        sm.delete_model(ModelName=m)
    cloudwatch.delete_alarms(AlarmNames=[error_alarm, latency_alarm])
