"""Issue 13, what was left: the canary configuration refused when its verdict cannot decide, the canary's
sample-ratio check on the capacity share, production's own threshold, and the plan at the shadow test's start.
SageMaker calls go through botocore's Stubber (every request validated); CloudWatch is moto."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from fn_support import ENDPOINT, ENV, load_state

from functions import errors
from functions.adapters import sagemaker
from functions.config import settings_from
from functions.models import DeployInput
from functions.steps.deploy import deploy


@pytest.fixture
def sm() -> Stubber:
    with Stubber(sagemaker.client()) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _described(config: str = "old-cfg") -> dict:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    return {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": config,
        "ProductionVariants": [{"VariantName": "AllTraffic"}],
        "EndpointStatus": "InService",
        "CreationTime": now,
        "LastModifiedTime": now,
    }


# --- 1. a canary whose verdict cannot decide is refused before UpdateEndpoint ------------------------------
def test_deploy_refuses_a_canary_bake_too_short_for_the_verdict(sm) -> None:
    """60-s bake of 60-s periods: at most one period with both fleets, the verdict needs 2 (a variance)."""
    doc = load_state("deploy")
    inp = DeployInput.model_validate(doc)
    settings = settings_from({**ENV, "CANARY_VERDICT": "msprt", "WAIT_INTERVAL_SECONDS": "60",
                              "METRIC_PERIOD_SECONDS": "60"})  # fmt: skip
    sm.add_response("describe_endpoint", _described(), {"EndpointName": ENDPOINT})
    with pytest.raises(errors.InvalidTrigger) as exc:  # no update_endpoint queued: the Stubber would fail on one
        deploy(inp.upload, inp.alarms, settings)
    text = str(exc.value)
    assert "60-s" in text and "WaitIntervalSeconds" in text and "MetricPeriodSeconds" in text
    assert "1 period" in text and "2" in text and "120 s" in text  # the arithmetic and the fix


def test_deploy_lets_a_decidable_canary_or_the_alarms_only_method_through(sm) -> None:
    doc = load_state("deploy")
    inp = DeployInput.model_validate(doc)
    for env in ({"CANARY_VERDICT": "alarms-only", "WAIT_INTERVAL_SECONDS": "60", "METRIC_PERIOD_SECONDS": "60"},
                {"CANARY_VERDICT": "msprt", "WAIT_INTERVAL_SECONDS": "120", "METRIC_PERIOD_SECONDS": "60"}):
        settings = settings_from({**ENV, **env})
        sm.add_response("describe_endpoint", _described(), {"EndpointName": ENDPOINT})
        sm.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"})
        out = deploy(inp.upload, inp.alarms, settings)
        assert out.status.value == "IN_PROGRESS"


# --- 2. the canary's capacity share reaches the verdict (its sample-ratio check) ---------------------------
def test_capacity_share_of_the_canary_step() -> None:
    """k of the new fleet's n instances take k/n of the requests (the emulator's rule, AWS's '25 %' example);
    CAPACITY_PERCENT rounds down to whole instances, at least one. LINEAR has several shares: no single one."""
    from functions.steps.check_deployment import capacity_share
    from functions.steps.deploy import build_deployment_config

    def config(strategy: str, pct: int) -> dict:
        return build_deployment_config(strategy, canary_percent=pct, linear_step_percent=pct, wait_interval_seconds=300,
                                       termination_wait_seconds=60, max_execution_timeout_seconds=3600,
                                       alarm_names=["a"])  # fmt: skip

    assert capacity_share(config("CANARY", 25), 4) == 0.25
    assert capacity_share(config("CANARY", 25), 2) == 0.5 * 1  # floor(0.5) -> 1 instance of 2
    assert capacity_share(config("CANARY", 30), 10) == 0.3
    assert capacity_share(config("LINEAR", 25), 4) is None
    assert capacity_share(config("ALL_AT_ONCE", 25), 4) is None
    assert capacity_share(None, 4) is None
    by_count = config("CANARY", 25)
    by_count["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"] = {"Type": "INSTANCE_COUNT",
                                                                                       "Value": 1}
    assert capacity_share(by_count, 3) == 1 / 3


def test_judge_canary_hands_the_capacity_share_to_the_verdict(monkeypatch) -> None:
    from datetime import UTC, datetime

    from functions.models import DeploymentMode, DeploymentState, DeploymentStatus
    from functions.steps import check_deployment as cd
    from functions.steps.deploy import build_deployment_config

    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        return None

    monkeypatch.setattr(cd, "canary_analysis", fake)
    config = build_deployment_config("CANARY", canary_percent=25, linear_step_percent=25, wait_interval_seconds=300,
                                     termination_wait_seconds=60, max_execution_timeout_seconds=3600,
                                     alarm_names=["a"])  # fmt: skip
    deployment = DeploymentState(
        mode=DeploymentMode.UPDATE, endpoint_name=ENDPOINT, target_config="new", previous_config="old",
        status=DeploymentStatus.IN_PROGRESS, previous_variant="AllTraffic", target_variant="AllTraffic",
        started_at=datetime(2026, 11, 23, 12, tzinfo=UTC), deployment_config=config,
    )  # fmt: skip
    cd.judge_canary(deployment, settings_from({**ENV, "INSTANCE_COUNT": "4"}), datetime(2026, 11, 23, 13, tzinfo=UTC))
    assert seen["capacity_share"] == 0.25
