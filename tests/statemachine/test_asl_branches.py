"""Every branch of statemachine/guardrail.asl.json, executed on moto's Step Functions interpreter."""

from __future__ import annotations

import json

import pytest
import sfn_steps as s
from sfn_harness import Execution, run


def execute(script: dict, **kwargs) -> Execution:
    result = run(s.event(), script, **kwargs)
    assert result.fakes.problems == [], result.fakes.problems  # documents and results match functions.models
    return result


def assert_ended(result: Execution, outcome: str | None, status: str = "SUCCEEDED") -> None:
    assert result.status == status, (result.error, result.cause, result.states)
    notified = [n.outcome for n in result.notifications]
    assert notified == ([outcome] if outcome else []), result.states
    # The lock is released on every path, exactly once, and it is the last task.
    assert result.states.count("ReleaseLock") == 1, result.states
    assert result.states[-2:] in (["Finish", "Done"], ["Finish", "ExecutionFailed"])
    assert result.states[-3] == "ReleaseLock"


def test_first_deployment_creates_endpoint_and_skips_the_watch():
    script = s.base_script()
    script["Deploy"] = s.deployment("IN_PROGRESS", mode="CREATE")
    script["CheckDeployment"] = [
        s.deployment("IN_PROGRESS", mode="CREATE", attempts=1),
        s.deployment("SUCCEEDED", mode="CREATE", attempts=2),
    ]
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert result.states.count("CheckDeployment") == 2
    assert result.states.count("WaitForDeployment") == 2
    assert "WatchAfterDeployment" not in result.states
    assert "StartShadowTest" not in result.states
    assert result.output["outcome"] == "DEPLOYED"
    # Each step's result lands as-is at its key of the execution document.
    assert result.output["deployment"]["status"] == "SUCCEEDED"
    assert result.output["upload"]["endpoint_name"] == s.ENDPOINT
    assert result.output["execution"]["Name"] == "exec-1"


def test_successful_update_watches_alarms_then_deploys():
    result = execute(s.base_script())
    assert_ended(result, "DEPLOYED")
    order = [
        "Start", "LoadTiming", "ParseUpload", "AcquireLock", "QueueTurn", "IsDuplicate", "QualityGate", "PreFlight",
        "CreateModel", "CreateEndpointConfig", "EnsureAlarms", "ShadowRequested", "UpdateApprovalRequired", "Deploy",
        "WaitForDeployment", "CheckDeployment", "DeploymentStatus",
        "WaitForDeployment", "CheckDeployment", "DeploymentStatus",
        "WatchAfterDeployment", "CheckAlarmsAfterWatch", "WatchVerdict", "CheckData", "Deployed", "Housekeeping", "Notify",
        "ReleaseLock",
        "Finish", "Done",
    ]  # fmt: skip
    assert result.states == order
    assert result.output["watch"]["alarm"] is False
    # The post-deployment check got the finished deployment (it writes `watch`, not `deployment`).
    watch_call = result.fakes.calls_to("CheckDeployment")[-1]
    assert watch_call["deployment"]["status"] == "SUCCEEDED"
    assert result.fakes.calls_to("Rollback") == []


def test_auto_rollback_detected_during_update():
    script = s.base_script()
    reason = "One or more configured alarm for automatic rollback deployment is in ALARM state: [a]."
    script["CheckDeployment"] = [
        s.deployment("IN_PROGRESS", attempts=1),
        s.deployment("ROLLED_BACK", attempts=2, failure_reason=reason),
    ]
    result = execute(script)
    assert_ended(result, "ROLLED_BACK")
    assert "WatchAfterDeployment" not in result.states
    assert result.notifications[0].deployment["failure_reason"] == reason


def test_alarm_after_bake_triggers_manual_rollback():
    script = s.base_script()
    script["CheckDeployment"] = [s.deployment("SUCCEEDED", attempts=1), s.watch(alarm=True)]
    result = execute(script)
    assert_ended(result, "ROLLED_BACK")
    after = result.states[result.states.index("WatchVerdict") + 1 :][:3]
    assert after == ["Rollback", "RollbackSettled", "RolledBack"]
    rollback_input = result.fakes.calls_to("Rollback")[0]
    assert rollback_input["watch"]["alarms_in_alarm"] == [f"{s.ENDPOINT}-v2-latency"]
    assert result.output["watch"]["rolled_back"] is True


def test_shadow_test_promotes_after_polling():
    script = s.base_script(shadow_enabled=True)
    script["StartShadowTest"] = s.shadow("RUNNING")
    script["CheckShadowTest"] = [
        s.shadow("RUNNING", attempts=1),
        s.shadow("ENDED", done=True, verdict="PROMOTE", attempts=2),
    ]
    script["ConcludeShadowTest"] = s.shadow("CONCLUDED", done=True, verdict="PROMOTE", attempts=2)
    result = execute(script)
    assert_ended(result, "PROMOTED")
    assert result.states.count("CheckShadowTest") == 2
    assert result.states.count("WaitForShadowResult") == 1
    assert "Deploy" not in result.states  # promotion replaces the guarded update
    assert result.fakes.calls_to("ConcludeShadowTest")[0]["shadow"]["verdict"] == "PROMOTE"


def test_shadow_test_rejects():
    script = s.base_script(shadow_enabled=True)
    script["StartShadowTest"] = s.shadow("RUNNING")
    script["CheckShadowTest"] = s.shadow("ENDED", done=True, verdict="REJECT", attempts=1)
    script["ConcludeShadowTest"] = s.shadow("CONCLUDED", done=True, verdict="REJECT", attempts=1)
    result = execute(script)
    assert_ended(result, "SHADOW_REJECTED")
    assert "Deploy" not in result.states


def test_shadow_test_without_verdict_concludes_inconclusive_after_max_polls():
    script = s.base_script(shadow_enabled=True)
    script["StartShadowTest"] = s.shadow("RUNNING")
    script["CheckShadowTest"] = lambda doc: s.shadow("RUNNING", attempts=doc["shadow"]["attempts"] + 1)
    script["ConcludeShadowTest"] = s.shadow("CONCLUDED", done=True, verdict="INCONCLUSIVE", attempts=4)
    result = execute(script)
    assert_ended(result, "INCONCLUSIVE")
    assert result.states.count("CheckShadowTest") == 4  # MaxPollAttempts in the test substitutions


def test_shadow_requested_on_first_deployment_falls_back_to_deploy():
    script = s.base_script(shadow_enabled=True)
    script["StartShadowTest"] = s.shadow("SKIPPED")
    script["Deploy"] = s.deployment("IN_PROGRESS", mode="CREATE")
    script["CheckDeployment"] = s.deployment("SUCCEEDED", mode="CREATE", attempts=1)
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert result.states.index("StartShadowTest") < result.states.index("Deploy")
    assert "WaitForShadow" not in result.states


def test_quality_gate_rejects_and_deploys_nothing():
    script = s.base_script()
    script["QualityGate"] = s.error("ModelRejected", "Model rejected by the quality gate: AUC 0.61 < 0.75")
    result = execute(script)
    assert_ended(result, "REJECTED")
    assert result.fakes.calls_to("CreateModel") == []
    assert result.notifications[0].error.error == "ModelRejected"
    assert "AUC 0.61" in result.notifications[0].error.message


def test_transient_errors_are_retried_then_succeed():
    script = s.base_script()
    script["Deploy"] = [s.error("EndpointNotReady", "endpoint is Updating"), s.deployment("IN_PROGRESS")]
    script["CheckDeployment"] = [s.error("Throttled"), s.deployment("SUCCEEDED", attempts=1), s.watch()]
    script["CreateModel"] = [s.error("Lambda.TooManyRequestsException"), s.created()]
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert len(result.fakes.calls_to("Deploy")) == 2
    assert len(result.fakes.calls_to("CreateModel")) == 2
    assert len(result.fakes.calls_to("CheckDeployment")) == 3  # throttled, succeeded, watch
    assert result.states.count("Deploy") == 1  # retries stay inside the state


def test_step_failure_is_caught_notified_and_fails_the_execution():
    script = s.base_script()
    script["CreateEndpointConfig"] = s.error("AwsServiceError", "ValidationException: bad instance type")
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "AwsServiceError"
    assert "bad instance type" in s.cause_message(result.cause)
    assert result.notifications[0].error.error == "AwsServiceError"
    assert "EnsureAlarms" not in result.states


def test_bad_trigger_fails_before_the_lock_and_still_releases_it():
    script = s.base_script()
    script["ParseUpload"] = s.error(
        "InvalidTrigger", "key models/x.tar.gz is outside models/<name>/<version>/"
    )
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "InvalidTrigger"
    assert result.fakes.calls_to("AcquireLock") == []
    assert "upload" not in result.fakes.calls_to("ReleaseLock")[0]


@pytest.mark.parametrize("reason", ["CannotStartContainerError", None])
def test_deployment_failed_status_fails_with_reason(reason):
    script = s.base_script()
    script["CheckDeployment"] = s.deployment("FAILED", attempts=1, failure_reason=reason)
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "DeploymentFailed"
    assert result.cause == f"Endpoint {s.ENDPOINT} is Failed: {reason or 'null'}"


def test_deployment_polling_is_bounded():
    script = s.base_script()
    script["CheckDeployment"] = lambda doc: s.deployment(
        "IN_PROGRESS", attempts=doc["deployment"]["attempts"] + 1
    )
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "DeploymentTimedOut"
    assert result.states.count("CheckDeployment") == 4


def test_duplicate_upload_ends_quietly():
    script = s.base_script()
    script["AcquireLock"] = s.lock(duplicate=True)
    result = execute(script)
    assert_ended(result, None)
    assert result.output["outcome"] == "DUPLICATE"
    assert result.fakes.calls_to("QualityGate") == []


def test_busy_lock_is_retried_with_backoff_then_acquired():
    script = s.base_script()
    script["AcquireLock"] = [s.error("EndpointLocked", "held by exec-0"), s.error("EndpointLocked"), s.lock()]
    result = execute(script, substitutions={"LockRetrySeconds": "0"})
    assert_ended(result, "DEPLOYED")
    assert result.states.count("WaitForLock") == 2
    assert result.output["lock_retry"]["attempt"] == 2
    assert "error" not in result.output


def test_lock_backoff_doubles_the_wait():
    script = s.base_script()
    script["AcquireLock"] = [s.error("EndpointLocked"), s.error("EndpointLocked"), s.lock()]
    result = execute(script, substitutions={"LockRetrySeconds": "1"})
    waits = [
        json.loads(e["stateEnteredEventDetails"]["input"])["lock_retry"]["wait_seconds"]
        for e in result.history
        if e.get("stateEnteredEventDetails", {}).get("name") == "WaitForLock"
    ]
    assert waits == [1, 2]


def test_lock_held_too_long_fails():
    script = s.base_script()
    script["AcquireLock"] = s.error("EndpointLocked", "held by exec-0")
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "EndpointLocked"
    assert len(result.fakes.calls_to("AcquireLock")) == 4  # first try + LockMaxAttempts (3)
    assert "held by exec-0" in s.cause_message(result.cause)


def test_notify_failure_falls_back_to_a_direct_sns_message():
    script = s.base_script()
    script["Notify"] = s.error("KeyError", "boom")
    result = execute(script)
    assert result.status == "SUCCEEDED"
    assert "NotifyFallback" in result.states and "ReleaseLock" in result.states
    assert len(result.published) == 1
    assert result.published[0]["subject"] == "Guardrail DEPLOYED (notify step failed)"
    assert json.loads(result.published[0]["message"])["outcome"] == "DEPLOYED"


def test_release_failure_does_not_change_the_outcome():
    script = s.base_script()
    script["ReleaseLock"] = s.error("AwsServiceError", "dynamodb down")
    result = execute(script)
    assert result.status == "SUCCEEDED"
    assert result.output["release_error"]["Error"] == "AwsServiceError"


def test_data_check_after_the_watch_reports_drift_but_keeps_the_deployment():
    script = s.base_script()
    script["CheckData"] = s.data_check(flags=["DRIFT"])
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert result.output["data_check"]["flags"] == ["DRIFT"]
    # check_data got the finished deployment's document (upload + watch).
    call = result.fakes.calls_to("CheckData")[0]
    assert call["watch"]["alarm"] is False and call["upload"]["endpoint_name"] == s.ENDPOINT


def test_failing_data_check_never_fails_a_good_deployment():
    script = s.base_script()
    script["CheckData"] = s.error("AwsServiceError", "capture bucket unreadable")
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert result.output["data_check_error"]["Error"] == "AwsServiceError"
    assert "data_check" not in result.output


def test_housekeeping_runs_after_a_deployment_that_stands_and_notify_sees_it():
    result = execute(s.base_script())
    assert_ended(result, "DEPLOYED")
    assert result.states[result.states.index("Deployed") + 1] == "Housekeeping"
    call = result.fakes.calls_to("Housekeeping")[0]
    assert call["outcome"] == "DEPLOYED" and call["lock"]["owner"] and call["deployment"]["target_config"]
    assert result.fakes.calls_to("Notify")[0]["housekeeping"]["deleted_alarms"] == ["old-alarm"]


@pytest.mark.parametrize("error", ["AwsServiceError", "Lambda.Unknown"])
def test_failing_housekeeping_never_fails_a_good_deployment(error):
    script = s.base_script()
    script["Housekeeping"] = s.error(error, "DeleteAlarms refused")
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert result.output["housekeeping_error"]["Error"] == error
    assert result.fakes.calls_to("Notify")[0]["housekeeping_error"]["Error"] == error


def test_no_housekeeping_after_a_rollback():
    script = s.base_script()
    script["CheckDeployment"] = [s.deployment("SUCCEEDED", attempts=1), s.watch(alarm=True)]
    result = execute(script)
    assert_ended(result, "ROLLED_BACK")
    assert "Housekeeping" not in result.states


def test_shadow_test_first_wait_is_the_step_poll_seconds():
    script = s.base_script(shadow_enabled=True)
    script["StartShadowTest"] = s.shadow("RUNNING")
    script["CheckShadowTest"] = s.shadow("ENDED", done=True, verdict="REJECT", attempts=1)
    script["ConcludeShadowTest"] = s.shadow("CONCLUDED", done=True, verdict="REJECT", attempts=1)
    result = execute(script)
    assert_ended(result, "SHADOW_REJECTED")
    assert result.states.count("WaitForShadow") == 1 and "CheckData" not in result.states
