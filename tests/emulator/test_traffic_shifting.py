"""Blue/green traffic really moves: shares per step, no failed request, timeouts. Blue and green share their
variant name (AWS requires it for guarded updates), so which fleet answered is told by the model's answer."""

from __future__ import annotations

import threading
import time
from collections import Counter

from emulator_helpers import FAST_METRICS, create_model, eventually, metric_stats, row, served_by, wait_status

from local.sagemaker import deployment


def config(sm, name, variants):
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": v, "ModelName": m, "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": n,
        "InitialVariantWeight": w} for v, m, n, w in variants], MetricsConfig=FAST_METRICS)


def policy(routing, termination=0):
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": termination,
                                      "MaximumExecutionTimeoutInSeconds": 600}}


class Load:
    """Steady load from several keep-alive clients; counts answers per variant and every failure."""

    def __init__(self, smr, endpoint, boosters, clients=4):
        self.smr, self.endpoint, self.boosters = smr, endpoint, boosters
        self.seen: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def _run(self, seed):
        i = 0
        while not self._stop.is_set():
            try:
                payload = row(seed * 10_000 + i)
                r = self.smr.invoke_endpoint(EndpointName=self.endpoint, ContentType="text/csv", Body=payload)
                score = float(r["Body"].read())
                self.seen.append((time.monotonic(), served_by(self.boosters, payload, score)))
            except Exception as exc:
                self.failures.append(repr(exc))
            i += 1

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()


def test_no_request_fails_during_a_successful_update_under_load(sm, smr, cloudwatch, boosters, names):
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    config(sm, names("c1"), [("AllTraffic", names("m1"), 4, 1.0)])
    config(sm, names("c2"), [("AllTraffic", names("m2"), 4, 1.0)])
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    with Load(smr, names("e"), boosters) as load:
        time.sleep(0.5)
        sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c2"), DeploymentConfig=policy(
            {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 2}, 1))
        desc = wait_status(sm, names("e"), ("InService",), timeout=30)
        time.sleep(0.5)
    assert desc["EndpointConfigName"] == names("c2")
    assert not load.failures, load.failures[:3]
    variants = Counter(v for _, v in load.seen)
    assert len(load.seen) > 200 and set(variants) == {"v1", "v2"}
    assert load.seen[-1][1] == "v2"
    def flushed():
        blue = metric_stats(cloudwatch, "Invocations", names("e"), "AllTraffic", names("c1"))["Sum"]
        green = metric_stats(cloudwatch, "Invocations", names("e"), "AllTraffic", names("c2"))["Sum"]
        assert blue + green == len(load.seen)  # every request counted once per dimension set, on its own fleet
        errors = metric_stats(cloudwatch, "Invocation5XXErrors", names("e"), "AllTraffic", names("c2"))
        assert errors["Sum"] == 0 and errors["SampleCount"] == green

    eventually(flushed)


def test_canary_share_and_linear_steps(sm, smr, boosters, names):
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    config(sm, names("c1"), [("AllTraffic", names("m1"), 4, 1.0)])
    config(sm, names("c2"), [("AllTraffic", names("m2"), 4, 1.0)])
    config(sm, names("c3"), [("AllTraffic", names("m1"), 4, 1.0)])
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"

    def sample(n):
        return Counter(served_by(boosters, row(i), float(smr.invoke_endpoint(
            EndpointName=names("e"), ContentType="text/csv", Body=row(i))["Body"].read())) for i in range(n))

    def wait_baking(message_start):
        for _ in range(200):
            d = sm.describe_endpoint(EndpointName=names("e"))
            pv = d.get("PendingDeploymentSummary", {}).get("ProductionVariants", [{}])[0]
            status = (pv.get("VariantStatus") or [{}])[0]
            if status.get("Status") == "Baking" and status["StatusMessage"].startswith(message_start):
                return d, pv
            time.sleep(0.05)
        raise AssertionError(f"never baking with {message_start!r}")

    def sample_within(message_start, n):
        """Requests sent while one step bakes (checked before and after, so a slow machine cannot mix steps)."""
        d, pv = wait_baking(message_start)
        counts = sample(n)
        after = sm.describe_endpoint(EndpointName=names("e"))["PendingDeploymentSummary"]["ProductionVariants"][0]
        assert after["VariantStatus"] == pv["VariantStatus"], "the step ended while sampling"
        return d, pv, counts

    # canary of 1 of 4 instances → a quarter of the requests
    sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c2"), DeploymentConfig=policy(
        {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 6}, 2))
    d, pv, counts = sample_within(
        "Baking for 6 seconds (WaitIntervalInSeconds) with traffic enabled on canary capacity of 1", 160)
    assert pv["VariantName"] == "AllTraffic" and pv["CurrentInstanceCount"] == 1 and pv["DesiredInstanceCount"] == 4
    assert d["EndpointConfigName"] == names("c1") and d["PendingDeploymentSummary"]["EndpointConfigName"] == names("c2")
    assert 20 <= counts["v2"] <= 60 and counts["v1"] + counts["v2"] == 160  # binomial(160, 1/4)
    wait_baking("Baking for 2 seconds (TerminationWaitInSeconds)")
    assert sample(50) == Counter({"v2": 50})  # all traffic on green, blue still standing
    assert wait_status(sm, names("e"), ("InService",))["EndpointConfigName"] == names("c2")

    # linear steps of 25 %: shares 1/4, 2/4, 3/4, then all
    sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c3"), DeploymentConfig=policy(
        {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}, "WaitIntervalInSeconds": 4}))
    shares = []
    for k in (1, 2, 3):
        _, _, counts = sample_within(f"Baking for 4 seconds (WaitIntervalInSeconds) with traffic enabled on {k} instance(s)", 120)
        shares.append(counts["v1"] / 120)
    assert shares[0] < shares[1] < shares[2], shares
    assert abs(shares[0] - 0.25) < 0.14 and abs(shares[2] - 0.75) < 0.14, shares
    assert wait_status(sm, names("e"), ("InService",))["EndpointConfigName"] == names("c3")


def test_new_config_weights_split_traffic(sm, smr, names):
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    config(sm, names("c1"), [("a", names("m1"), 1, 1.0)])
    config(sm, names("c2"), [("b", names("m1"), 1, 3.0), ("c", names("m2"), 1, 1.0)])
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c2"))  # no DeploymentConfig: all at once
    desc = wait_status(sm, names("e"), ("InService",))
    assert desc["EndpointConfigName"] == names("c2") and "FailureReason" not in desc
    counts = Counter(smr.invoke_endpoint(EndpointName=names("e"), ContentType="text/csv", Body=row(i))
                     ["InvokedProductionVariant"] for i in range(400))
    assert 250 <= counts["b"] <= 350 and counts["b"] + counts["c"] == 400


def test_plan_of_steps():
    canary = deployment.plan({"TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 5,
                              "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 30}}, "TerminationWaitInSeconds": 7}, 10)
    assert [(s.share, s.bake, s.bake_field) for s in canary] == [
        (0.3, 5, "WaitIntervalInSeconds"), (1.0, 7, "TerminationWaitInSeconds")]
    linear = deployment.plan({"TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": 1,
                              "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 33}}}, 3)
    assert [round(s.share, 2) for s in linear] == [0.33, 0.67, 1.0]
    at_once = deployment.plan({"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 2}}, 2)
    assert [(s.share, s.bake) for s in at_once] == [(1.0, 2), (1.0, 0)]


def test_maximum_execution_timeout_rolls_back(emulator, sm, smr, boosters, names, monkeypatch):
    """The timeout is ≥ 600 s on the API; here the plan's clock is what runs out (time is patched)."""
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    config(sm, names("c1"), [("AllTraffic", names("m1"), 2, 1.0)])
    config(sm, names("c2"), [("AllTraffic", names("m2"), 2, 1.0)])
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    real = time.monotonic
    start = real()
    # every second of real time counts as 1,000 s inside the deployment
    monkeypatch.setattr(deployment, "clock", lambda: start + (real() - start) * 1000)
    sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c2"), DeploymentConfig=policy(
        {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 3600}, 3600))
    desc = wait_status(sm, names("e"), ("InService",), timeout=20)
    assert desc["EndpointConfigName"] == names("c1")
    assert desc["FailureReason"].startswith("The deployment exceeded the maximum execution timeout of 600 seconds")
    score = float(smr.invoke_endpoint(EndpointName=names("e"), ContentType="text/csv", Body=row())["Body"].read())
    assert served_by(boosters, row(), score) == "v1"


def test_alarm_during_the_final_bake_rolls_back_all_at_once(sm, smr, cloudwatch, boosters, names):
    """ALL_AT_ONCE: everything on green, then the termination bake with blue standing: an alarm still rolls back."""
    create_model(sm, names("m1"), "v2")
    create_model(sm, names("m2"), "slow")  # v1's predictions, slower
    config(sm, names("c1"), [("AllTraffic", names("m1"), 1, 1.0)])
    config(sm, names("c2"), [("AllTraffic", names("m2"), 1, 1.0)])
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    alarm = names("latency")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="ModelLatency", Statistic="Average", Period=10,
        EvaluationPeriods=1, Threshold=1000, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": names("e")}, {"Name": "VariantName", "Value": "AllTraffic"},
                    {"Name": "EndpointConfigName", "Value": names("c2")}])
    deployment_config = {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 1},
                                  "TerminationWaitInSeconds": 60, "MaximumExecutionTimeoutInSeconds": 600},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]}}
    sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c2"), DeploymentConfig=deployment_config)
    for _ in range(200):
        pv = sm.describe_endpoint(EndpointName=names("e")).get("PendingDeploymentSummary", {}).get("ProductionVariants")
        if pv and pv[0].get("VariantStatus", [{}])[0].get("StatusMessage", "").startswith(
                "Baking for 60 seconds (TerminationWaitInSeconds) with traffic enabled on full capacity of 1"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("never reached the termination bake")
    def served():
        return Counter(served_by(boosters, row(i), float(smr.invoke_endpoint(
            EndpointName=names("e"), ContentType="text/csv", Body=row(i))["Body"].read())) for i in range(20))

    assert served() == Counter({"v1": 20})  # the slow model (v1's trees)
    def flushed():
        latency = metric_stats(cloudwatch, "ModelLatency", names("e"), "AllTraffic", names("c2"))
        assert latency["SampleCount"] == 20 and latency["Average"] > 1000

    eventually(flushed)  # then the evaluator's verdict, done by hand here
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="ModelLatency > 1 ms")
    desc = wait_status(sm, names("e"), ("InService",), timeout=10)
    assert desc["EndpointConfigName"] == names("c1")
    assert desc["FailureReason"] == (
        f"One or more configured alarm for automatic rollback deployment is in ALARM state: [{alarm}].")
    assert served() == Counter({"v2": 20})
