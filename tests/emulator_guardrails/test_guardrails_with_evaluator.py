"""AWS's deployment-guardrails sample, call for call (aws-reference.md §1.2-1.5), with Guardrail's alarms and
the real alarm evaluator deciding: three models (one incompatible) plus a slow one, their endpoint configs,
an endpoint, alarms scoped to each new fleet (5XX Average >= 0.05 and ModelLatency Average >= 5 ms, with the
EndpointConfigName dimension), canary and linear updates under replayed traffic. The incompatible model rolls
back on the 5XX alarm, the slow one on the latency alarm, a good one completes with no failed request.
Times are shortened: alarm Period 10 s, one evaluation period, WaitIntervalInSeconds 15 (BAKE), TerminationWait 2.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from guardrails_support import IMAGE, ROLE, model_url, wait_status

from guardrail.traffic import HeldOut, TrafficConfig, TrafficReplayer, TrafficResult

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("emulator-guardrails")]

ROLLBACK = "One or more configured alarm for automatic rollback deployment is in ALARM state: [{}]."
RATE = 40.0  # requests per second: enough samples per 10-s period for a stable Average
LATENCY_THRESHOLD_US = 5000.0
# A bake must outlast one 10-s metric publication plus one 10-s alarm period, or SageMaker would finish the
# update before any alarm could see it (the emulator publishes as AWS does: MetricsConfig, 10 s at best).
BAKE = 15
ROUTING = {
    "canary": {
        "Type": "CANARY",
        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
        "WaitIntervalInSeconds": BAKE,
    },
    "linear": {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 33},
        "WaitIntervalInSeconds": BAKE,
    },
}


def create_model(sm, name: str, artifact: str) -> None:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_url(artifact)},
    )


def create_config(sm, name: str, model: str) -> None:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 3,
                "InitialVariantWeight": 1.0,
            }
        ],
        # 10-s alarms need 10-s invocation metrics: enhanced metrics, or SageMaker publishes once a minute
        # (API_MetricsConfig), and no alarm could see a bake.
        MetricsConfig={"EnableEnhancedMetrics": True, "MetricPublishFrequencyInSeconds": 10},
    )


def guardrail_alarms(cw, endpoint: str, config: str) -> tuple[str, str]:
    """Guardrail's two rollback alarms, watching the new fleet only (EndpointConfigName dimension)."""
    dims = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": "AllTraffic"},
        {"Name": "EndpointConfigName", "Value": config},
    ]
    names = (f"{config}-5xx-rate", f"{config}-model-latency")
    for name, metric, threshold in [
        (names[0], "Invocation5XXErrors", 0.05),
        (names[1], "ModelLatency", LATENCY_THRESHOLD_US),
    ]:
        cw.put_metric_alarm(
            AlarmName=name,
            AlarmDescription="Guardrail rollback alarm",
            ActionsEnabled=False,
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Statistic="Average",
            Dimensions=dims,
            Period=10,
            EvaluationPeriods=1,
            Threshold=threshold,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
        )
    described = cw.describe_alarms(AlarmNames=list(names))["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in described) == sorted(names)  # DescribeAlarms ignores unknown names
    # A new alarm starts INSUFFICIENT_DATA; the evaluator may already have judged it (no data, notBreaching: OK)
    # between PutMetricAlarm and DescribeAlarms. Never ALARM before any traffic.
    assert {a["StateValue"] for a in described} <= {"INSUFFICIENT_DATA", "OK"}
    return names


def deployment_config(kind: str, alarms: tuple[str, str]) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": ROUTING[kind],
            "TerminationWaitInSeconds": 2,
            "MaximumExecutionTimeoutInSeconds": 600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
    }


def update_under_traffic(
    sm, emulator, holdout, endpoint: str, config: str, dc: dict[str, Any], timeout: float = 90
) -> tuple[dict[str, Any], TrafficResult, set[str], float]:
    """UpdateEndpoint while replaying traffic; poll DescribeEndpoint until the update is over."""
    traffic = TrafficReplayer(
        TrafficConfig(endpoint_name=endpoint, rate=RATE, duration=timeout),
        HeldOut.from_csv(holdout),
        endpoint_url=emulator.url,
        region="us-east-1",
    )
    seen: set[str] = set()
    with traffic:
        time.sleep(1.0)  # steady load before the update, as in the sample
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config, DeploymentConfig=dc)
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            desc = sm.describe_endpoint(EndpointName=endpoint)
            pending = desc.get("PendingDeploymentSummary", {})
            seen |= {
                s["Status"] for v in pending.get("ProductionVariants", []) for s in v.get("VariantStatus", [])
            }
            if desc["EndpointStatus"] != "Updating":
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        time.sleep(1.0)  # a little traffic after the update ends
        traffic.stop()
    result = traffic.wait()
    print(
        f"UpdateEndpoint -> {desc['EndpointStatus']} on {desc['EndpointConfigName']} in {took:.1f} s, "
        f"{result.summary.errors} of {result.summary.sent} requests failed"
    )
    return desc, result, seen, took


def invocations(cw, endpoint: str, config: str) -> float:
    now = datetime.now(UTC)
    stats = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
        Dimensions=[
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"},
            {"Name": "EndpointConfigName", "Value": config},
        ],
    )
    return sum(p["Sum"] for p in stats["Datapoints"])


def state_updates(cw, alarm: str) -> list[dict[str, Any]]:
    return cw.describe_alarm_history(
        AlarmName=alarm, HistoryItemType="StateUpdate", ScanBy="TimestampAscending"
    )["AlarmHistoryItems"]


# linear (~55 s) runs in make test-slow (CI budget); canary keeps the alarm-driven path in make test.
@pytest.mark.parametrize("kind", ["canary", pytest.param("linear", marks=pytest.mark.slow)])
def test_guardrails_roll_back_bad_models_and_complete_a_good_one(
    kind, sm, cloudwatch, emulator, evaluator, holdout, names, slow_artifact
):
    endpoint = names("ep")
    models = {k: names(f"m-{k}") for k in ("v1", "incompatible", "v3", "slow")}
    configs = {k: names(f"c-{k}") for k in models}
    for k in models:
        create_model(sm, models[k], k)
        create_config(sm, configs[k], models[k])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=configs["v1"])
    assert wait_status(sm, endpoint)["EndpointStatus"] == "InService"

    # 1. the incompatible model: its requests fail (500), the 5XX alarm trips, SageMaker rolls back
    alarms = guardrail_alarms(cloudwatch, endpoint, configs["incompatible"])
    desc, traffic, seen, took = update_under_traffic(
        sm, emulator, holdout, endpoint, configs["incompatible"], deployment_config(kind, alarms)
    )
    # rolled back before the update could have completed (every bake of 6 s + the final bake of 2 s); the
    # exact detection time is a benchmark number (docs/benchmarks.md), not a test bound
    complete = BAKE * (1 if kind == "canary" else 2) + 2
    assert took < complete
    assert desc["EndpointStatus"] == "InService"
    assert desc["EndpointConfigName"] == configs["v1"]
    assert desc["FailureReason"] == ROLLBACK.format(alarms[0])
    assert "PendingDeploymentSummary" not in desc and "Baking" in seen
    assert traffic.summary.errors > 0 and set(traffic.summary.error_codes) == {"ModelError"}
    assert all(r.status == "ok" for r in traffic.records[-int(RATE // 2) :])  # served by v1 again
    updates = state_updates(cloudwatch, alarms[0])
    tripped = [u for u in updates if u["HistorySummary"].endswith("to ALARM")]
    assert tripped and "was greater than or equal to the threshold (0.05)" in tripped[0]["HistoryData"]
    assert cloudwatch.describe_alarms(AlarmNames=[alarms[1]])["MetricAlarms"][0]["StateValue"] != "ALARM"

    # 2. the slow model: valid answers, but ModelLatency trips the latency alarm
    alarms = guardrail_alarms(cloudwatch, endpoint, configs["slow"])
    desc, traffic, _, took = update_under_traffic(
        sm, emulator, holdout, endpoint, configs["slow"], deployment_config(kind, alarms)
    )
    assert took < complete
    assert desc["EndpointStatus"] == "InService"
    assert desc["EndpointConfigName"] == configs["v1"]
    assert desc["FailureReason"] == ROLLBACK.format(alarms[1])
    assert traffic.summary.errors == 0
    assert invocations(cloudwatch, endpoint, configs["slow"]) > 0
    # (it may be OK again by now: a few fast requests in flight at the rollback can make the newest datapoint)
    tripped = [u for u in state_updates(cloudwatch, alarms[1]) if u["HistorySummary"].endswith("to ALARM")]
    assert tripped and "was greater than or equal to the threshold (5000.0)" in tripped[0]["HistoryData"]

    # 3. a good model under steady load: the update completes and not one request fails
    alarms = guardrail_alarms(cloudwatch, endpoint, configs["v3"])
    desc, traffic, seen, took = update_under_traffic(
        sm, emulator, holdout, endpoint, configs["v3"], deployment_config(kind, alarms)
    )
    assert took >= BAKE * (1 if kind == "canary" else 2) + 2  # every bake ran to its end
    assert desc["EndpointStatus"] == "InService"
    assert desc["EndpointConfigName"] == configs["v3"]
    assert "Baking" in seen
    assert traffic.summary.errors == 0, traffic.summary.error_codes
    minimum = RATE * (BAKE * (1 if kind == "canary" else 2) + 2)  # requests due during the bakes alone
    assert traffic.summary.sent >= minimum
    assert invocations(cloudwatch, endpoint, configs["v3"]) > 0
    for alarm in alarms:
        assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "OK"
