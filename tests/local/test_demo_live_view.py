"""The demo's live view (issue 11 §4): the split SageMaker applies per fleet, requests/s per fleet from CloudWatch,
only the alarms of the configs in play. No local cloud: DescribeEndpoint answers are given, CloudWatch is moto."""

from datetime import UTC, datetime, timedelta

import boto3
from moto import mock_aws
from rich.console import Console

from guardrail import demo, scenarios
from guardrail.demo import EndpointView, FleetView, LiveView, Snapshot

EP = "guardrail-endpoint"
BLUE, GREEN, OLD = "bank-marketing-v2-cfg", "bank-marketing-v13-cfg", "bank-marketing-v1-cfg"


class FakeSageMaker:
    """DescribeEndpoint / DescribeEndpointConfig answers as SageMaker gives them during a canary (shapes from the
    executed AWS canary notebook, ../shared/aws-reference.md §1.8a: the green variant Baking on 1 of its
    instances with CurrentWeight 1.0)."""

    def __init__(self, endpoint: dict) -> None:
        self.endpoint = endpoint

    def describe_endpoint(self, EndpointName):
        return self.endpoint

    def describe_endpoint_config(self, EndpointConfigName):
        version = EndpointConfigName.split("-")[2]
        return {"ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": f"bank-marketing-{version}"}],
                "MetricsConfig": {"EnableEnhancedMetrics": True, "MetricPublishFrequencyInSeconds": 10}}


def variant(weight, current, desired, status=None):
    v = {"VariantName": "AllTraffic", "CurrentWeight": weight, "DesiredWeight": 1.0,
         "CurrentInstanceCount": current, "DesiredInstanceCount": desired}
    if status:
        v["VariantStatus"] = [{"Status": status, "StatusMessage": "", "StartTime": datetime.now(UTC)}]
    return v


def canary(status="Baking", active=1):
    return {
        "EndpointName": EP, "EndpointStatus": "Updating", "EndpointConfigName": BLUE,
        "ProductionVariants": [variant(1.0, 4, 4)],
        "PendingDeploymentSummary": {"EndpointConfigName": GREEN,
                                     "ProductionVariants": [variant(1.0 if status == "Baking" else 0.0, active, 4,
                                                                    status)]},
    }


def setup_function():
    demo._CONFIGS.clear()


def test_the_split_is_the_capacity_share_of_the_canary_not_the_weights():
    view = demo.endpoint_view(FakeSageMaker(canary()), EP)
    shares = {f.config: f.share for f in view.fleets}
    assert shares == {BLUE: 0.75, GREEN: 0.25}  # both CurrentWeights are 1.0: the weights alone say 50/50
    assert [f.role for f in view.fleets] == ["live", "new"]
    assert view.fleets[1].model == "bank-marketing-v13" and view.fleets[1].instances == (1, 4)


def test_a_green_fleet_still_launching_takes_no_traffic():
    view = demo.endpoint_view(FakeSageMaker(canary(status="Creating", active=2)), EP)
    assert {f.config: f.share for f in view.fleets} == {BLUE: 1.0, GREEN: 0.0}


def test_after_the_full_shift_one_fleet_serves_everything():
    ep = {"EndpointName": EP, "EndpointStatus": "InService", "EndpointConfigName": GREEN,
          "ProductionVariants": [variant(1.0, 4, 4)]}
    view = demo.endpoint_view(FakeSageMaker(ep), EP)
    assert [(f.config, f.share) for f in view.fleets] == [(GREEN, 1.0)]


@mock_aws
def test_requests_per_second_per_fleet_from_the_invocations_series():
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(seconds=now.timestamp() % 10 + 20)  # two whole 10-s periods ago

    def put(config, when, count):
        dims = [{"Name": "EndpointName", "Value": EP}, {"Name": "VariantName", "Value": "AllTraffic"},
                {"Name": "EndpointConfigName", "Value": config}]
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
            "MetricName": "Invocations", "Dimensions": dims, "Timestamp": when, "Values": [1.0],
            "Counts": [float(count)], "StorageResolution": 1}])

    put(BLUE, start - timedelta(seconds=10), 400)  # older: superseded by the newer period
    put(BLUE, start, 150)
    put(GREEN, start, 50)
    fleets = [FleetView(role="live", config=BLUE, variant="AllTraffic", model="m2", share=0.75),
              FleetView(role="new", config=GREEN, variant="AllTraffic", model="m13", share=0.25),
              FleetView(role="new", config=OLD, variant="AllTraffic", model="m1", share=0.0)]
    rates = demo.fleet_rates(cw, EP, fleets, {BLUE: 10, GREEN: 10, OLD: 10}, now=now)
    assert rates == {BLUE: 15.0, GREEN: 5.0, OLD: 0.0}


def render(view) -> str:
    console = Console(record=True, width=160, color_system=None)
    console.print(view)
    return console.export_text()


def test_the_live_view_shows_split_rates_and_only_the_alarms_in_play():
    fleets = [FleetView(role="live", config=BLUE, variant="AllTraffic", model="bank-marketing-v2", weight=1.0,
                        instances=(4, 4), share=0.75, rps=15.0),
              FleetView(role="new", config=GREEN, variant="AllTraffic", model="bank-marketing-v13", weight=1.0,
                        instances=(1, 4), status="Baking", share=0.25, rps=5.0)]
    snap = Snapshot(
        scenario="successful-update", elapsed=12.0, state="CheckDeployment",
        endpoint=EndpointView(status="Updating", config=BLUE, pending_config=GREEN, fleets=fleets),
        traffic={"AllTraffic": 230}, traffic_errors={"http_400": 40},
        alarms={f"guardrail-{EP}-{GREEN}-4xx-rate": "ALARM", f"guardrail-{EP}-{BLUE}-5xx-rate": "OK",
                f"guardrail-{EP}-{OLD}-5xx-rate": "ALARM"},  # v1's alarm is of a retired config
        in_play=[BLUE, GREEN],
    )
    view = LiveView([scenarios.get("successful-update")])
    view.tick(snap)
    text = render(view)
    live = next(line for line in text.splitlines() if "bank-marketing-v2" in line and "75%" in line)
    new = next(line for line in text.splitlines() if "bank-marketing-v13" in line and "25%" in line)
    assert "15.0 req/s" in live and "4/4" in live
    assert "5.0 req/s" in new and "1/4" in new and "Baking" in new
    assert f"{GREEN}-4xx-rate" in text and f"{BLUE}-5xx-rate" in text
    assert OLD not in text  # a retired config's alarm is not listed
    assert "http_400: 40" in text


def test_alarms_in_play_tell_v1_from_v11():
    alarms = {f"guardrail-{EP}-bank-marketing-v1-cfg-5xx-rate": "OK",
              f"guardrail-{EP}-bank-marketing-v11-cfg-5xx-rate": "OK"}
    assert demo.alarms_in_play(alarms, ["bank-marketing-v1-cfg"]) == {
        f"guardrail-{EP}-bank-marketing-v1-cfg-5xx-rate": "OK"}


@mock_aws
def test_metric_math_alarms_are_the_endpoints_too():
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    dims = [{"Name": "EndpointName", "Value": EP}, {"Name": "VariantName", "Value": "AllTraffic"},
            {"Name": "EndpointConfigName", "Value": GREEN}]
    cw.put_metric_alarm(
        AlarmName=f"guardrail-{EP}-{GREEN}-4xx-rate", EvaluationPeriods=1, Threshold=0.05,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Metrics=[{"Id": "new_fleet", "ReturnData": False, "MetricStat": {"Metric": {
            "Namespace": "AWS/SageMaker", "MetricName": "Invocation4XXErrors", "Dimensions": dims},
            "Period": 10, "Stat": "Average"}},
            {"Id": "regression", "Expression": "new_fleet", "ReturnData": True}])
    cw.put_metric_alarm(AlarmName="other-endpoint", EvaluationPeriods=1, Threshold=1, Namespace="AWS/SageMaker",
                        MetricName="Invocations", Statistic="Sum", Period=60,
                        ComparisonOperator="GreaterThanOrEqualToThreshold",
                        Dimensions=[{"Name": "EndpointName", "Value": "another"}])
    assert set(demo.alarm_states(cw, EP)) == {f"guardrail-{EP}-{GREEN}-4xx-rate"}


def test_the_checks_of_the_new_scenarios():
    """feature-mismatch-4xx must be rolled back by the relative 4XX alarm; no-traffic-update by the evidence
    policy, which the alert says ("no evidence")."""
    from guardrail.demo import ScenarioResult, check

    s = scenarios.get("feature-mismatch-4xx")
    doc = {"alarms": {"error_alarm": "e-5xx", "latency_alarm": "e-lat", "client_error_alarm": "e-4xx-rate"}}
    v2 = scenarios.model_name("v2")
    r = ScenarioResult(key=s.key, title=s.title, expected=s.expected, actual="ROLLED_BACK",
                       alert_outcome="ROLLED_BACK", alarms_fired=["e-5xx"], serving_before=v2, serving_after={v2: 10})
    assert check(r, s, doc) == ["client_error alarm e-4xx-rate never went to ALARM (fired: ['e-5xx'])"]
    r.alarms_fired = ["e-4xx-rate"]
    assert check(r, s, doc) == []

    n = scenarios.get("no-traffic-update")
    r = ScenarioResult(key=n.key, title=n.title, expected=n.expected, actual="ROLLED_BACK",
                       alert_outcome="ROLLED_BACK", alert_summary="Reason: a guardrail alarm fired after the deployment",
                       serving_before=v2, serving_after={v2: 10})
    assert check(r, n, {}) == [f"notification reason: 'Reason: a guardrail alarm fired after the deployment' "
                               f"(expected it to say {n.expected_reason!r})"]
    r.alert_summary = ("The update was rolled back. Reason: too few requests reached the new fleet to verify it "
                       "(no evidence, no promotion). The new fleet served 0 request(s)")
    assert check(r, n, {}) == []


def test_configs_in_play_are_the_live_one_and_this_scenarios_targets():
    # During a canary: both fleets.
    assert demo.configs_in_play(EndpointView(config=BLUE, pending_config=GREEN), [GREEN]) == [BLUE, GREEN]
    # After a rollback the green fleet is gone, but its alarm (the one that fired) is still this scenario's.
    assert demo.configs_in_play(EndpointView(config=BLUE), [GREEN]) == [BLUE, GREEN]
    # After a successful update the old config is retired: its alarms watched it as the new fleet of an older update.
    assert demo.configs_in_play(EndpointView(config=GREEN), [GREEN]) == [GREEN]
    assert demo.configs_in_play(EndpointView(), []) == []


def test_during_a_rolling_update_old_and_new_instances_share_traffic_by_count():
    # A rolling batch adds new instances beside the old ones still standing: 2 new (baking) and 4 old serve in
    # proportion to their instances (docs/aws-conformance.md, rolling), so the new fleet takes 2/6, not 2/4.
    ep = canary(active=2)
    ep["LastDeploymentConfig"] = {"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2},
                                                          "WaitIntervalInSeconds": 20}}
    shares = {f.config: round(f.share, 4) for f in demo.endpoint_view(FakeSageMaker(ep), EP).fleets}
    assert shares == {BLUE: round(4 / 6, 4), GREEN: round(2 / 6, 4)}
