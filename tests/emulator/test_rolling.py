"""Rolling deployments (RollingUpdatePolicy), as AWS documents them ("Use rolling deployments",
https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-rolling.html): instances are replaced in
batches, old and new serve side by side in proportion to their instances, a batch of old instances goes after each
bake, an alarm rolls back in batches of RollbackMaximumBatchSize (all at once without it), single-variant endpoints
only (deployment-guardrails-exclusions). Blue and green share their variant name, so which fleet answered is told
by the model's answer."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import FAST_METRICS, create_model, row, served_by, wait_status

from local.sagemaker import deployment


def rolling(batch, wait, rollback=None, alarms=()):
    policy = {"MaximumBatchSize": batch, "WaitIntervalInSeconds": wait, "MaximumExecutionTimeoutInSeconds": 600}
    if rollback is not None:
        policy["RollbackMaximumBatchSize"] = rollback
    dc = {"RollingUpdatePolicy": policy}
    if alarms:
        dc["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return dc


def config(sm, name, variants, shadow=None):
    extra = {}
    if shadow:
        extra["ShadowProductionVariants"] = [{"VariantName": shadow[0], "ModelName": shadow[1],
                                              "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1,
                                              "InitialVariantWeight": 0.5}]
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": v, "ModelName": m, "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": n,
        "InitialVariantWeight": 1.0} for v, m, n in variants], MetricsConfig=FAST_METRICS, **extra)


def fleets(desc):
    """(new instances, old instances, VariantStatus) from one DescribeEndpoint."""
    pending = (desc.get("PendingDeploymentSummary") or {}).get("ProductionVariants") or [{}]
    status = (pending[0].get("VariantStatus") or [{}])[0]
    return (pending[0].get("CurrentInstanceCount", 0), desc["ProductionVariants"][0]["CurrentInstanceCount"],
            status.get("Status"), status.get("StatusMessage", ""))


class Watch:
    """DescribeEndpoint every few ms in the background: every (new, old, status, message) seen, in order."""

    def __init__(self, sm, endpoint):
        self.sm, self.endpoint, self.seen, self.statuses = sm, endpoint, [], set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        while not self._stop.is_set():
            d = self.sm.describe_endpoint(EndpointName=self.endpoint)
            self.statuses.add((d["EndpointStatus"], d["EndpointConfigName"]))
            if d["EndpointStatus"] == "Updating" and d.get("PendingDeploymentSummary"):
                state = fleets(d)
                if not self.seen or self.seen[-1] != state:
                    self.seen.append(state)
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def sample(smr, endpoint, boosters, n):
    return Counter(served_by(boosters, row(i), float(smr.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Body=row(i))["Body"].read())) for i in range(n))


def wait_message(sm, endpoint, start, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = sm.describe_endpoint(EndpointName=endpoint)
        if d.get("PendingDeploymentSummary") and fleets(d)[3].startswith(start):
            return d
        time.sleep(0.02)
    raise AssertionError(f"never {start!r}")


@pytest.fixture
def four(sm, names):
    """An InService endpoint of 4 instances of v1 (variant AllTraffic), and a config of 4 instances of v2."""
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    config(sm, names("c1"), [("AllTraffic", names("m1"), 4)])
    config(sm, names("c2"), [("AllTraffic", names("m2"), 4)])
    return names("e")


def test_batches_and_rollback_batches_as_planned():
    size = {"Type": "CAPACITY_PERCENT", "Value": 33}
    assert deployment.batch_instances(size, 3) == 1  # AWS's sample: "33% * 3 = 1 instance"
    assert deployment.batch_instances({"Type": "CAPACITY_PERCENT", "Value": 25}, 2) == 1  # at least one
    assert deployment.batch_instances({"Type": "INSTANCE_COUNT", "Value": 2}, 4) == 2
    # (new, old) while each batch bakes: a batch of old instances goes after each bake
    assert deployment.rolling_plan(1, 4, 4) == [(1, 4), (2, 3), (3, 2), (4, 1)]
    assert deployment.rolling_plan(2, 4, 4) == [(2, 4), (4, 2)]
    assert deployment.rolling_plan(1, 3, 3) == [(1, 3), (2, 2), (3, 1)]
    # rollback from 4 new + 2 old back to 4 old, per batch: a batch of old instances up, a batch of new ones down
    assert deployment.rollback_plan(4, 2, 4, 1) == [(3, 3), (2, 4), (1, 4), (0, 4)]
    assert deployment.rollback_plan(4, 2, 4, None) == [(0, 4)]  # default: the whole old fleet at once
    assert deployment.rollback_plan(3, 2, 4, 2) == [(1, 4), (0, 4)]


def test_instances_are_replaced_in_batches_sharing_capacity(sm, smr, boosters, names, four):
    """CreateEndpoint keeps a rolling DeploymentConfig for RetainDeploymentConfig (AWS's sample calls it so)."""
    policy = rolling({"Type": "INSTANCE_COUNT", "Value": 1}, 6)
    sm.create_endpoint(EndpointName=four, EndpointConfigName=names("c1"), DeploymentConfig=policy)
    assert wait_status(sm, four)["EndpointStatus"] == "InService"
    with Watch(sm, four) as watch:
        sm.update_endpoint(EndpointName=four, EndpointConfigName=names("c2"), RetainDeploymentConfig=True)
        d = wait_message(sm, four, "Baking for 6 seconds (WaitIntervalInSeconds) with traffic enabled on 2 instance")
        counts = sample(smr, four, boosters, 120)  # 2 new of 5 instances in service: 40 %
        assert fleets(sm.describe_endpoint(EndpointName=four))[:2] == (2, 3), "the batch ended while sampling"
        desc = wait_status(sm, four, ("InService",), timeout=60)
    assert d["EndpointStatus"] == "Updating" and d["EndpointConfigName"] == names("c1")
    pv = d["PendingDeploymentSummary"]["ProductionVariants"][0]
    assert d["PendingDeploymentSummary"]["EndpointConfigName"] == names("c2")
    assert (pv["VariantName"], pv["CurrentInstanceCount"], pv["DesiredInstanceCount"]) == ("AllTraffic", 2, 4)
    assert d["ProductionVariants"][0]["DesiredInstanceCount"] == 4
    assert 28 <= counts["v2"] <= 70 and sum(counts.values()) == 120, counts  # binomial(120, 0.4): 48 ± 5.4

    baking = [(new, old) for new, old, status, _ in watch.seen if status == "Baking"]
    assert baking == [(1, 4), (2, 3), (3, 2), (4, 1)], watch.seen
    assert all(new + old <= 5 for new, old, *_ in watch.seen), watch.seen  # never more than a batch extra
    assert {s for s, _ in watch.statuses} <= {"InService", "Updating"}
    assert ("Updating", names("c2")) not in watch.statuses  # the old config is named until the end
    assert desc["EndpointConfigName"] == names("c2") and "PendingDeploymentSummary" not in desc
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 4 and "FailureReason" not in desc
    assert desc["LastDeploymentConfig"] == policy
    assert sample(smr, four, boosters, 30) == Counter({"v2": 30})


@pytest.mark.parametrize(("rollback", "news"), [
    ({"Type": "INSTANCE_COUNT", "Value": 1}, [4, 3, 2, 1]),
    (None, [4]),  # default: 100 %, the whole old fleet at once
])
def test_an_alarm_rolls_back_in_batches(sm, smr, cloudwatch, boosters, names, four, rollback, news):
    alarm = names("latency")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="ModelLatency", Statistic="Average", Period=10,
        EvaluationPeriods=1, Threshold=1000, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": four}, {"Name": "VariantName", "Value": "AllTraffic"},
                    {"Name": "EndpointConfigName", "Value": names("c2")}])
    sm.create_endpoint(EndpointName=four, EndpointConfigName=names("c1"))
    assert wait_status(sm, four)["EndpointStatus"] == "InService"
    policy = rolling({"Type": "CAPACITY_PERCENT", "Value": 50}, 3, rollback, [alarm])
    sm.update_endpoint(EndpointName=four, EndpointConfigName=names("c2"), DeploymentConfig=policy)
    # the second batch bakes: 4 new instances and the 2 old ones not yet cleaned up
    d = wait_message(sm, four, "Baking for 3 seconds (WaitIntervalInSeconds) with traffic enabled on 4 instance")
    assert fleets(d)[:2] == (4, 2)
    failures: list[str] = []
    with Watch(sm, four) as watch:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="ModelLatency > 1 ms")
        deadline = time.monotonic() + 20
        while sm.describe_endpoint(EndpointName=four)["EndpointStatus"] != "InService":
            assert time.monotonic() < deadline, "no rollback"
            try:  # the endpoint serves all along
                smr.invoke_endpoint(EndpointName=four, ContentType="text/csv", Body=row())["Body"].read()
            except ClientError as exc:
                failures.append(str(exc))
    assert not failures, failures[:3]
    after_alarm = [(new, old) for new, old, *_ in watch.seen]
    seen_news = [n for i, (n, _) in enumerate(after_alarm) if i == 0 or after_alarm[i - 1][0] != n]
    assert [n for n in seen_news if n] == news, watch.seen  # (the last batch's 0 may end with the update)
    olds = [old for _, old in after_alarm]
    assert olds == sorted(olds) and olds[0] == 2, watch.seen  # old instances come back, never go
    assert all(new + old <= 6 for new, old in after_alarm), watch.seen
    desc = sm.describe_endpoint(EndpointName=four)
    assert desc["EndpointConfigName"] == names("c1") and "PendingDeploymentSummary" not in desc
    assert desc["FailureReason"] == (
        f"One or more configured alarm for automatic rollback deployment is in ALARM state: [{alarm}].")
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 4
    assert desc["LastDeploymentConfig"] == policy
    assert sample(smr, four, boosters, 30) == Counter({"v1": 30})


def test_maximum_execution_timeout_rolls_back_a_rolling_update(sm, smr, boosters, names, four, monkeypatch):
    sm.create_endpoint(EndpointName=four, EndpointConfigName=names("c1"))
    assert wait_status(sm, four)["EndpointStatus"] == "InService"
    real = time.monotonic
    start = real()
    monkeypatch.setattr(deployment, "clock", lambda: start + (real() - start) * 1000)  # 1 s counts as 1,000 s
    sm.update_endpoint(EndpointName=four, EndpointConfigName=names("c2"),
                       DeploymentConfig=rolling({"Type": "INSTANCE_COUNT", "Value": 1}, 3600))
    desc = wait_status(sm, four, ("InService",), timeout=20)
    assert desc["EndpointConfigName"] == names("c1")
    assert desc["FailureReason"].startswith("The deployment exceeded the maximum execution timeout of 600 seconds")
    assert sample(smr, four, boosters, 10) == Counter({"v1": 10})


@pytest.fixture(scope="module")
def unchecked(emulator):
    """botocore's own validation off: what is tested is the emulator's."""
    import boto3
    from botocore.config import Config

    return boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1",
                        config=Config(parameter_validation=False, retries={"max_attempts": 1}))


ONE = {"Type": "INSTANCE_COUNT", "Value": 1}


@pytest.mark.parametrize(("case", "live", "new", "dc", "message"), [
    ("batch-over-50pct", [4], [4], rolling({"Type": "CAPACITY_PERCENT", "Value": 51}, 0), "between 5% and 50%"),
    ("batch-under-5pct", [4], [4], rolling({"Type": "CAPACITY_PERCENT", "Value": 4}, 0), "between 5% and 50%"),
    ("3-of-4-instances", [4], [4], rolling({"Type": "INSTANCE_COUNT", "Value": 3}, 0), "between 5% and 50%"),
    ("fleet-of-one", [1], [1], rolling(ONE, 0), "between 5% and 50%"),
    ("rollback-over-100pct", [4], [4], rolling(ONE, 0, {"Type": "CAPACITY_PERCENT", "Value": 101}), "100%"),
    ("wait-over-3600", [4], [4], rolling(ONE, 3601), "3600"),
    ("both-policies", [4], [4], {**rolling(ONE, 0), "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}}, "one update policy"),
    ("two-live-variants", [2, 2], [4], rolling(ONE, 0), "multi-variant"),
    ("two-new-variants", [4], [2, 2], rolling(ONE, 0), "multi-variant"),
    ("shadow-variant", [4], "shadow", rolling(ONE, 0), "multi-variant"),
])
def test_rolling_refusals(sm, unchecked, names, case, live, new, dc, message):
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    config(sm, names("c1"), [(f"V{i}", names("m1"), n) for i, n in enumerate(live)])
    if new == "shadow":
        config(sm, names("c2"), [("V0", names("m2"), 4)], shadow=("S", names("m1")))
    else:
        config(sm, names("c2"), [(f"V{i}", names("m2"), n) for i, n in enumerate(new)])
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    with pytest.raises(ClientError) as exc:
        unchecked.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c2"), DeploymentConfig=dc)
    error = exc.value.response["Error"]
    assert error["Code"] == "ValidationException" and message in error["Message"], (case, error)
    desc = sm.describe_endpoint(EndpointName=names("e"))
    assert desc["EndpointStatus"] == "InService" and desc["EndpointConfigName"] == names("c1")
    assert "PendingDeploymentSummary" not in desc
