"""One end-to-end test per scenario of DESIGN.md, on one local cloud, in the table's order.

Each starts from an upload (or, for the malformed event, a StartExecution with it) and checks the
outcome, the path through the state machine, the alarms, the SNS message, the endpoint config and which
model answers traffic afterwards (by the live config's model: every fleet shares the production variant name).
"""

import pytest

from guardrail import scenarios
from guardrail.demo import endpoint_view, run_scenario

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(240)]

CORE = ["ParseUpload", "AcquireLock", "QualityGate", "CreateModel", "CreateEndpointConfig", "EnsureAlarms"]


def variant(version: str) -> str:
    """The model that serves a version: versions are told apart by model and config, not by variant name."""
    return scenarios.model_name(version)


def config(version: str) -> str:
    return f"{scenarios.MODEL_NAME}-{version}-cfg"


@pytest.fixture(scope="module")
def run(target, models_dir, data, alerts):
    def _run(key: str):
        return run_scenario(target, scenarios.get(key), models_dir, data, alerts=alerts)

    return _run


def in_order(path: list[str], states: list[str]) -> bool:
    """`states` appear in `path` in this order (not necessarily adjacent)."""
    it = iter(path)
    return all(state in it for state in states)


def test_first_deployment(run):
    r = run("first-deployment")
    assert r.problems == []
    assert r.actual == "DEPLOYED" and r.alert_outcome == "DEPLOYED"
    assert in_order(r.path, [*CORE, "Deploy", "CheckDeployment", "Deployed", "Notify", "ReleaseLock", "Done"])
    assert "WatchAfterDeployment" not in r.path  # CREATE: nothing to roll back to
    assert r.endpoint_config_before is None and r.endpoint_config_after == config("v1")
    assert r.serving_after == {variant("v1"): 10}


def test_successful_canary_update_moves_traffic(run, target):
    r = run("successful-update")
    assert r.problems == []
    assert in_order(r.path, [*CORE, "Deploy", "CheckDeployment", "WatchAfterDeployment", "CheckAlarmsAfterWatch",
                             "Deployed", "Notify"])
    # During the canary both models answered; afterwards only the new one does.
    assert r.traffic.get(variant("v1"), 0) > 0 and r.traffic.get(variant("v2"), 0) > 0
    assert r.traffic_errors == {} and r.alarms_fired == []
    assert r.endpoint_config_after == config("v2") and r.serving_after == {variant("v2"): 10}
    assert endpoint_view(target.client("sagemaker"), target.endpoint_name).status == "InService"


def test_incompatible_model_rolls_back_on_5xx_alarm(run, target):
    r = run("incompatible-model")
    assert r.problems == []
    assert r.actual == "ROLLED_BACK" and r.alert_outcome == "ROLLED_BACK"
    assert in_order(r.path, ["Deploy", "CheckDeployment", "RolledBack", "Notify", "ReleaseLock"])
    assert any("5xx" in name for name in r.alarms_fired)
    assert r.traffic_errors  # the canary answered 5XX to part of the traffic
    assert r.endpoint_config_after == config("v2") and r.serving_after == {variant("v2"): 10}
    ep = target.client("sagemaker").describe_endpoint(EndpointName=target.endpoint_name)
    assert "alarm for automatic rollback" in ep.get("FailureReason", "")
    # The report of this execution sees both fleets and the alarm from CloudWatch.
    from guardrail.report import collect

    data = collect(r.execution_arn, client=target.client)
    configs = {s.dimensions.get("EndpointConfigName") for s in data.series if s.metric == "Invocations"}
    assert {config("v2"), config("v3")} <= configs
    assert any(state == "ALARM" for a in data.alarms for _, state in a.transitions)
    assert "PreFlight" in r.path  # it ran and stood aside: deployment.json says "preflight": false


def test_preflight_rejects_a_truncated_model_before_any_request_fails(run, target):
    r = run("preflight-catches-bad-artifact")
    assert r.problems == []
    assert r.actual == "REJECTED" and r.alert_outcome == "REJECTED"
    assert in_order(r.path, ["QualityGate", "PreFlight", "Rejected", "Notify", "ReleaseLock"])
    assert "CreateModel" not in r.path and "Deploy" not in r.path
    assert "cannot be loaded" in (r.cause or "")
    assert sum(r.traffic.values()) > 0 and r.traffic_errors == {}  # traffic ran and not one request failed
    assert target.client("sagemaker").list_models(NameContains="-v12")["Models"] == []
    assert r.endpoint_config_after == r.endpoint_config_before == config("v2")
    assert r.serving_after == {variant("v2"): 10}


def test_a_model_missing_a_feature_rolls_back_on_the_relative_4xx_alarm(run, target):
    """Pre-flight off: the canary answers 400 to every request it gets (a booster on one column fewer), which no
    5XX alarm sees; the new fleet's 4XX rate minus the old fleet's fires and SageMaker rolls back."""
    r = run("feature-mismatch-4xx")
    assert r.problems == []
    assert r.actual == "ROLLED_BACK" and r.alert_outcome == "ROLLED_BACK"
    assert in_order(r.path, ["QualityGate", "PreFlight", "CreateModel", "Deploy", "CheckDeployment", "RolledBack",
                             "Notify"])
    assert any(name.endswith("-4xx-rate") for name in r.alarms_fired)
    assert not any(name.endswith("-5xx-rate") for name in r.alarms_fired)
    assert r.traffic_errors  # the users the canary reached got errors (ModelError: the container's 400)
    assert r.endpoint_config_after == config("v2") and r.serving_after == {variant("v2"): 10}
    ep = target.client("sagemaker").describe_endpoint(EndpointName=target.endpoint_name)
    assert "4xx-rate" in ep.get("FailureReason", "")


def test_slow_model_rolls_back_on_latency_alarm(run):
    r = run("slow-model")
    assert r.problems == []
    assert r.actual == "ROLLED_BACK"
    assert any("latency" in name for name in r.alarms_fired)
    assert r.serving_after == {variant("v2"): 10}


@pytest.mark.slow  # the bakes and the watch run out with nothing to count: ~90 s
def test_an_update_nobody_calls_is_rolled_back_for_lack_of_evidence(run, target):
    r = run("no-traffic-update")
    assert r.problems == []
    assert r.actual == "ROLLED_BACK" and r.alert_outcome == "ROLLED_BACK" and r.alarms_fired == []
    assert "no evidence" in (r.alert_summary or "") and "The new fleet served 0 request(s)" in r.alert_summary
    assert in_order(r.path, ["Deploy", "CheckDeployment", "WatchAfterDeployment", "Rollback", "RolledBack", "Notify"])
    # The new fleet served nobody (CloudWatch, per config; r.traffic's minute sums also hold the scenario before).
    assert r.traffic.get(variant("v14"), 0) == 0 and r.traffic_errors == {}
    assert r.endpoint_config_after == config("v2") and r.serving_after == {variant("v2"): 10}


# ~150 s: make test-slow (CI budget). The fast path of a promotion is tests/functions/test_fn_emulator_e2e.py.
@pytest.mark.slow
@pytest.mark.timeout(360)  # scenarios.SHADOW_TIMEOUT (a 120 s test, then the promotion) + settling and probes
def test_shadow_test_promotes_a_better_model(run, target):
    r = run("shadow-promote")
    assert r.problems == []
    assert in_order(r.path, ["EnsureAlarms", "StartShadowTest", "CheckShadowTest", "ConcludeShadowTest", "Promoted",
                             "Notify"])
    assert "Deploy" not in r.path
    assert r.serving_after == {variant("v5"): 10}
    assert endpoint_view(target.client("sagemaker"), target.endpoint_name).shadow == []


def test_shadow_test_rejects_a_slow_model(run, target):
    r = run("shadow-reject")
    assert r.problems == []
    assert in_order(r.path, ["StartShadowTest", "CheckShadowTest", "ConcludeShadowTest", "ShadowRejected", "Notify"])
    assert r.traffic_errors == {}  # production never saw the shadow's errors
    # production is what served before (v5 after shadow-promote in the full table; v2 when promote is skipped)
    assert r.serving_before is not None and r.serving_after == {r.serving_before: 10}
    assert endpoint_view(target.client("sagemaker"), target.endpoint_name).shadow == []


@pytest.mark.parametrize("key", ["quality-gate-below-threshold", "quality-gate-biased"])
def test_quality_gate_rejects_and_deploys_nothing(run, target, key):
    r = run(key)
    assert r.problems == []
    assert r.actual == "REJECTED" and r.alert_outcome == "REJECTED"
    assert in_order(r.path, ["QualityGate", "Rejected", "Notify", "ReleaseLock"]) and "CreateModel" not in r.path
    version = scenarios.get(key).version
    models = target.client("sagemaker").list_models(NameContains=f"-{version}")["Models"]
    assert models == []
    assert r.serving_before is not None and r.serving_after == {r.serving_before: 10}  # nothing changed


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("bad-input-malformed-event", "InvalidTrigger"),
        ("bad-input-missing-artifact", "ArtifactNotFound"),
        ("bad-input-corrupt-artifact", "InvalidArtifact"),
    ],
)
def test_bad_input_fails_clearly_and_leaves_the_endpoint_alone(run, target, key, error):
    r = run(key)
    assert r.problems == []
    assert r.actual == "FAILED" and r.error == error and r.cause
    assert in_order(r.path, ["ParseUpload", "Failed", "Notify", "ReleaseLock", "Finish", "ExecutionFailed"])
    assert target.client("stepfunctions").describe_execution(executionArn=r.execution_arn)["status"] == "FAILED"
    # (after a promotion the endpoint runs on a config SageMaker made for the experiment)
    assert r.endpoint_config_after == r.endpoint_config_before is not None
