"""Issue 11 §3: no evidence, no promotion. The post-deployment watch counts the requests each fleet served since
UpdateEndpoint (Invocations Sum, EndpointConfigName series) and applies EVIDENCE_POLICY / deployment.json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from fn_support import ENDPOINT, load_state

from functions.config import load_settings, reset_settings
from functions.models import CheckDeploymentInput, DeploymentRequest, WatchState
from functions.steps.check_deployment import watch_deployment


@pytest.fixture(autouse=True)
def _alarm_history() -> None:
    from local.alarms import patch_moto

    patch_moto()  # DescribeAlarmHistory, which the watch reads (as the local cloud's moto does)


@pytest.fixture(autouse=True)
def _endpoint_serves_the_new_config(monkeypatch) -> None:
    """The watch also checks what the endpoint serves (issue 12 §6): here it serves the new config."""
    from functions.steps import check_deployment

    monkeypatch.setattr(check_deployment, "endpoint_moved", lambda d: (False, d.target_config))


def _served(config: str, n: int, at: datetime) -> None:
    cw = boto3.client("cloudwatch")
    dims = [
        {"Name": "EndpointName", "Value": ENDPOINT},
        {"Name": "VariantName", "Value": "AllTraffic"},
        {"Name": "EndpointConfigName", "Value": config},
    ]
    data = [
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at + timedelta(seconds=i % 50), "Value": 1.0}
        for i in range(n)
    ]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[i : i + 500])


def _watch(served_new: int, served_old: int = 300, *, policy=None, minimum=None, previous=None) -> WatchState:
    doc = CheckDeploymentInput.model_validate(load_state("check_deployment"))
    now = datetime.now(UTC)
    started = now - timedelta(minutes=3)
    deployment = doc.deployment.model_copy(
        update={"status": "SUCCEEDED", "started_at": started, "succeeded_at": now - timedelta(minutes=1)}
    )
    _served(deployment.target_config, served_new, started + timedelta(seconds=30))
    if deployment.previous_config:
        _served(deployment.previous_config, served_old, started + timedelta(seconds=30))
    cw = boto3.client("cloudwatch")
    for name in [*doc.alarms.names, *doc.alarms.watch_names]:  # the guardrail alarms exist and are quiet
        cw.put_metric_alarm(
            AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Average",
            Period=60, EvaluationPeriods=1, Threshold=0.05, ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="quiet")
    upload = doc.upload.model_copy(update={"evidence_policy": policy, "min_requests": minimum})
    return watch_deployment(deployment, doc.alarms, now=now, upload=upload, previous=previous)


def test_no_traffic_update_is_rolled_back_by_default(aws) -> None:
    watch = _watch(0)
    assert watch.alarm is False and watch.evidence_action == "ROLLBACK"
    assert watch.evidence.new_fleet_requests == 0 and watch.evidence.min_requests == load_settings().min_requests
    assert watch.evidence.policy == "rollback" and not watch.evidence.sufficient


def test_enough_requests_pass_and_both_fleets_are_counted(aws) -> None:
    watch = _watch(150, 420)
    assert watch.evidence_action == "OK" and watch.evidence.sufficient
    assert (watch.evidence.new_fleet_requests, watch.evidence.old_fleet_requests) == (150, 420)


def test_accept_policy_keeps_the_model_unverified(aws) -> None:
    assert _watch(5, policy="accept").evidence_action == "ACCEPT"


def test_extend_policy_extends_up_to_the_limit_then_rolls_back(aws, monkeypatch) -> None:
    monkeypatch.setenv("EVIDENCE_MAX_EXTENSIONS", "2")
    reset_settings()
    first = _watch(5, policy="extend")
    assert (first.evidence_action, first.extensions) == ("EXTEND", 1)
    assert _watch(0, policy="extend", previous=first.model_copy(update={"extensions": 2})).evidence_action == (
        "ROLLBACK"
    )


def test_deployment_json_min_requests_and_template_policy(aws, monkeypatch) -> None:
    assert _watch(20, minimum=10).evidence_action == "OK"  # guardrails.min_requests (shared with the shadow test)
    monkeypatch.setenv("EVIDENCE_POLICY", "accept")
    reset_settings()
    assert _watch(0).evidence_action == "ACCEPT"


def test_deployment_json_accepts_only_known_policies() -> None:
    assert DeploymentRequest.model_validate({"evidence_policy": "extend"}).evidence_policy == "extend"
    with pytest.raises(ValueError):
        DeploymentRequest.model_validate({"evidence_policy": "ignore"})


# --- alerts say how many requests each fleet served ------------------------------------------------------
def _evidence_doc(outcome: str, action: str, new: int) -> dict:
    doc = load_state("notify")
    doc["outcome"] = outcome
    doc["watch"] = {
        "alarm": False,
        "rolled_back": outcome == "ROLLED_BACK",
        "evidence_action": action,
        "evidence": {"new_fleet_requests": new, "old_fleet_requests": 812, "min_requests": 100},
    }
    if outcome == "ROLLED_BACK":
        doc["deployment"] |= {"status": "SUCCEEDED", "failure_reason": None, "alarms_in_alarm": []}
    return doc


def _summary(doc: dict) -> str:
    from functions.models import NotifyInput
    from functions.steps.notify import summary_for

    return summary_for(NotifyInput.model_validate(doc), "xgb-runnerup/2", ENDPOINT)[0]


def test_rollback_for_lack_of_evidence_says_so_with_the_counts() -> None:
    text = _summary(_evidence_doc("ROLLED_BACK", "ROLLBACK", 0))
    assert "too few requests reached the new fleet" in text and "guardrail alarm fired" not in text
    assert "The new fleet served 0 request(s), the old fleet 812 (at least 100 needed" in text


def test_deployed_and_unverified_say_what_each_fleet_served() -> None:
    assert "The new fleet served 140 request(s), the old fleet 812" in _summary(_evidence_doc("DEPLOYED", "OK", 140))
    unverified = _summary(_evidence_doc("DEPLOYED_UNVERIFIED", "ACCEPT", 7))
    assert "NOT verified" in unverified and "served 7 request(s)" in unverified
