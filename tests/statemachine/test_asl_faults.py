"""Issue 12 (failure-scenarios F09a/F09b): a crashed Lambda (Lambda.Unknown on AWS for a timeout or OOM,
Runtime.ExitError / Sandbox.Timedout from the local runtime) is retried on every idempotent step, so one crash
during a good canary no longer ends FAILED with the endpoint switching anyway, and a crashed ReleaseLock is
released on the retry instead of holding the endpoint for the lock's TTL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sfn_steps as s
from test_asl_branches import assert_ended, execute

ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "guardrail.asl.json").read_text())
CRASHES = {"Lambda.Unknown", "Runtime.ExitError", "Sandbox.Timedout"}
# Steps whose repetition is harmless: reads/polls, creates that treat "exists" as done, conditional lock writes,
# UpdateEndpoint that follows its own pending update, stops that accept "already stopped", deduplicated notify.
IDEMPOTENT = {
    "ParseUpload", "AcquireLock", "QualityGate", "PreFlight", "CreateModel", "CreateEndpointConfig",
    "EnsureAlarms", "StartShadowTest", "CheckShadowTest", "ConcludeShadowTest", "AbortShadowTest", "Deploy",
    "CheckDeployment", "CheckAlarmsAfterWatch", "Rollback", "ReleaseLock", "Notify",
}  # fmt: skip


@pytest.mark.parametrize("state", sorted(IDEMPOTENT))
def test_idempotent_steps_retry_a_crashed_function(state):
    retries = ASL["States"][state]["Retry"]
    crash = [r for r in retries if set(r["ErrorEquals"]) >= CRASHES]
    assert crash, f"{state} does not retry {sorted(CRASHES)}"
    assert crash[0]["MaxAttempts"] >= 2 and crash[0].get("JitterStrategy") == "FULL"
    # Lambda.Unknown is never swallowed by an earlier, broader retrier with a smaller budget.
    assert not any("States.ALL" in r["ErrorEquals"] for r in retries)


def test_one_crashed_check_deployment_poll_is_followed_to_the_end():
    script = s.base_script()
    script["CheckDeployment"] = [
        s.deployment("IN_PROGRESS", attempts=1),
        s.error("Runtime.ExitError", "worker exited with signal 9"),
        s.deployment("SUCCEEDED", attempts=2),
        s.watch(),
    ]
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert len(result.fakes.calls_to("CheckDeployment")) == 4


def test_a_crashed_release_lock_is_retried_until_the_lock_is_released():
    script = s.base_script()
    script["ReleaseLock"] = [s.error("Lambda.Unknown", "Task timed out after 60.00 seconds"), s.RELEASED]
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert len(result.fakes.calls_to("ReleaseLock")) == 2
    assert result.output["release"]["released"] is True and "release_error" not in result.output


def test_a_crashed_notify_is_retried_not_replaced_by_the_fallback():
    script = s.base_script()
    script["Notify"] = [s.error("Runtime.ExitError", "worker exited"), s.notify]
    result = execute(script)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert [n.outcome for n in result.notifications] == ["DEPLOYED", "DEPLOYED"]  # one failed call, one retry
    assert "NotifyFallback" not in result.states and result.published == []


def test_an_endpoint_changed_by_someone_else_during_the_watch_is_reported_not_rolled_back():
    script = s.base_script()
    moved = s.watch(alarm=True) | {"changed_externally": True, "serving_config": "someone-elses-cfg"}
    script["CheckDeployment"] = [s.deployment("IN_PROGRESS", attempts=1), s.deployment("SUCCEEDED", attempts=2), moved]
    result = execute(script)
    assert_ended(result, "CHANGED_EXTERNALLY")
    assert "Rollback" not in result.states and "CheckData" not in result.states
    assert result.notifications[0].watch["serving_config"] == "someone-elses-cfg"


def test_a_guardrail_alarm_missing_after_the_deployment_rolls_it_back():
    script = s.base_script()
    gone = s.watch(alarm=True) | {"missing_alarms": [f"{s.ENDPOINT}-v2-latency"]}
    script["CheckDeployment"] = [s.deployment("IN_PROGRESS", attempts=1), s.deployment("SUCCEEDED", attempts=2), gone]
    script["Rollback"] = s.watch(alarm=True, rolled_back=True) | {"settled": True, "missing_alarms": gone["missing_alarms"]}
    result = execute(script)
    assert_ended(result, "ROLLED_BACK")
    assert result.notifications[0].watch["missing_alarms"] == [f"{s.ENDPOINT}-v2-latency"]
