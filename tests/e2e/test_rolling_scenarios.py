"""The two rolling scenarios (issue 15 §3) through the whole stack on the strict local cloud: the state machine
sends a RollingUpdatePolicy, the emulator replaces the 4 instances in batches, the alarms judge the new fleet.

What DescribeEndpoint shows is sampled in the background: the batches (new, old instances in service) and, after
the latency alarm, the new instances going one at a time (RollbackMaximumBatchSize 25 % of 4)."""

from __future__ import annotations

import threading
import time

import pytest

from guardrail import scenarios
from guardrail.demo import endpoint_view, run_scenario

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(900)]


class Instances:
    """(new, old) instances in service, each change seen while the endpoint updates."""

    def __init__(self, sm, endpoint):
        self.sm, self.endpoint, self.seen = sm, endpoint, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            d = self.sm.describe_endpoint(EndpointName=self.endpoint)
            pending = (d.get("PendingDeploymentSummary") or {}).get("ProductionVariants")
            if d["EndpointStatus"] == "Updating" and pending:
                state = (pending[0].get("CurrentInstanceCount", 0), d["ProductionVariants"][0]["CurrentInstanceCount"])
                if not self.seen or self.seen[-1] != state:
                    self.seen.append(state)
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_rolling_rollback_in_batches_then_a_rolling_update(target, models_dir, data, alerts):
    sm = target.client("sagemaker")
    if endpoint_view(sm, target.endpoint_name).config is None:  # alone in its worker: an endpoint first
        assert run_scenario(target, scenarios.get("first-deployment"), models_dir, data, alerts=alerts).problems == []
    before = endpoint_view(sm, target.endpoint_name).config

    with Instances(sm, target.endpoint_name) as watch:
        r = run_scenario(target, scenarios.get("rolling-rollback"), models_dir, data, alerts=alerts)
    assert r.problems == [] and r.actual == "ROLLED_BACK" and r.alert_outcome == "ROLLED_BACK"
    assert any("latency" in name for name in r.alarms_fired)
    assert len(r.traffic) == 2 and r.traffic_errors == {}  # both fleets answered, nobody got an error
    assert r.endpoint_config_after == before
    assert (2, 4) in watch.seen, watch.seen  # the first batch of 2 bakes beside the 4 old instances
    news = [n for n, _ in watch.seen[watch.seen.index((2, 4)):]]
    assert 1 in news and news == sorted(news, reverse=True), watch.seen  # then they go one at a time
    desc = sm.describe_endpoint(EndpointName=target.endpoint_name)
    assert "alarm for automatic rollback" in desc["FailureReason"]
    policy = desc["LastDeploymentConfig"]["RollingUpdatePolicy"]
    assert policy["MaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 50}
    assert policy["RollbackMaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 4

    with Instances(sm, target.endpoint_name) as watch:
        r = run_scenario(target, scenarios.get("rolling-update"), models_dir, data, alerts=alerts)
    assert r.problems == [] and r.actual == "DEPLOYED" and r.alarms_fired == []
    assert [s for s in watch.seen if s in ((2, 4), (4, 2))] == [(2, 4), (4, 2)], watch.seen  # two batches
    assert all(new + old <= 6 for new, old in watch.seen), watch.seen  # never more than a batch extra
    assert r.endpoint_config_after == f"{scenarios.MODEL_NAME}-v22-cfg"
    assert r.serving_after == {scenarios.model_name("v22"): 10}
