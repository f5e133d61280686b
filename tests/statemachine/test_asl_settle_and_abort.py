"""Issue 9 part 2 branches (reviews/aws-audit.md rows 7, 8, 15) on moto's Step Functions interpreter:
outcomes are announced only once SageMaker has finished, a failure after StartShadowTest stops the experiment,
and Lambda's client-side timeout is retried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sfn_steps as s
from sfn_harness import run
from test_asl_branches import assert_ended, execute

ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "guardrail.asl.json").read_text())
AWS_RECOMMENDED = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
}


def _rolled(settled: bool, polls: int, status: str = "Updating") -> dict:
    return s.watch(alarm=True, rolled_back=True) | {
        "settled": settled, "rollback_polls": polls, "endpoint_status": "InService" if settled else status,
    }  # fmt: skip


def _concluded(verdict: str, settled: bool, polls: int, status: str = "Stopping") -> dict:
    return s.shadow("CONCLUDED", done=True, verdict=verdict, attempts=1) | {
        "settled": settled, "stop_polls": polls, "experiment_status": "Completed" if settled else status,
    }  # fmt: skip


def _shadow_script(**overrides) -> dict:
    script = s.base_script(shadow_enabled=True)
    script["StartShadowTest"] = s.shadow("RUNNING")
    script["CheckShadowTest"] = s.shadow("ENDED", done=True, verdict="PROMOTE", attempts=1)
    script["ConcludeShadowTest"] = _concluded("PROMOTE", True, 0)
    script["AbortShadowTest"] = {"experiment_name": f"{s.ENDPOINT}-v2-shadow", "experiment_status": "Running",
                                 "stopped": True, "actions": {"v2": "Remove", "v1": "Retain"}}  # fmt: skip
    script.update(overrides)
    return script


# --- row 7 ---------------------------------------------------------------------------------------------------
def test_rolled_back_is_announced_only_after_the_rollback_settled():
    script = s.base_script()
    script["CheckDeployment"] = [s.deployment("SUCCEEDED", attempts=1), s.watch(alarm=True)]
    script["Rollback"] = [_rolled(False, 0), _rolled(False, 1), _rolled(True, 2)]
    result = execute(script)
    assert_ended(result, "ROLLED_BACK")
    assert result.states.count("Rollback") == 3 and result.states.count("WaitForRollback") == 2
    assert result.states.index("RolledBack") > max(i for i, n in enumerate(result.states) if n == "Rollback")
    assert result.output["watch"]["settled"] is True


def test_rollback_that_never_settles_is_not_reported_as_rolled_back():
    script = s.base_script()
    script["CheckDeployment"] = [s.deployment("SUCCEEDED", attempts=1), s.watch(alarm=True)]
    script["Rollback"] = lambda doc: _rolled(False, doc["watch"].get("rollback_polls", 0) + 1 if doc["watch"].get("rolled_back") else 0)
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "RollbackNotConfirmed" and "RolledBack" not in result.states
    assert result.states.count("Rollback") == 5  # first call + MaxPollAttempts (4) polls


def test_promoted_is_announced_only_after_the_experiment_and_endpoint_settled():
    script = _shadow_script(ConcludeShadowTest=[_concluded("PROMOTE", False, 0), _concluded("PROMOTE", False, 1),
                                                _concluded("PROMOTE", True, 2)])  # fmt: skip
    result = execute(script)
    assert_ended(result, "PROMOTED")
    assert result.states.count("ConcludeShadowTest") == 3 and result.states.count("WaitForShadowStop") == 2
    assert result.fakes.calls_to("AbortShadowTest") == []


def test_shadow_stop_that_never_settles_fails():
    script = _shadow_script(ConcludeShadowTest=lambda doc: _concluded(
        "REJECT", False, doc["shadow"].get("stop_polls", 0) + 1 if doc["shadow"]["status"] == "CONCLUDED" else 0))
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "ShadowStopNotConfirmed" and "ShadowRejected" not in result.states


def test_deployment_poll_budget_comes_from_the_deploy_step():
    script = s.base_script()
    script["Deploy"] = s.deployment("IN_PROGRESS", max_attempts=7)
    script["CheckDeployment"] = lambda doc: s.deployment(
        "IN_PROGRESS", attempts=doc["deployment"]["attempts"] + 1, max_attempts=7
    )
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "DeploymentTimedOut" and "not done" in result.cause
    assert result.states.count("CheckDeployment") == 7  # not MaxPollAttempts (4)


# --- row 8 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failing", ["StartShadowTest", "CheckShadowTest", "ConcludeShadowTest"])
def test_failure_after_the_experiment_started_stops_it_before_failed(failing):
    script = _shadow_script(**{failing: s.error("Lambda.Unknown", "Task timed out after 120.00 seconds")})
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "Lambda.Unknown"  # the original failure is what is reported
    assert result.states.index("AbortShadowTest") < result.states.index("Failed")
    abort_input = result.fakes.calls_to("AbortShadowTest")[0]
    assert abort_input["error"]["Error"] == "Lambda.Unknown"
    notified = result.fakes.calls_to("Notify")[0]  # a FAILED execution has no output: read the last document
    assert notified["shadow_abort"]["actions"] == {"v2": "Remove", "v1": "Retain"}


def test_failing_abort_still_fails_notifies_and_releases():
    script = _shadow_script(
        CheckShadowTest=s.error("AwsServiceError", "AccessDenied"),
        AbortShadowTest=s.error("AwsServiceError", "StopInferenceExperiment denied"),
    )
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.error == "AwsServiceError" and "AccessDenied" in s.cause_message(result.cause)
    assert result.fakes.calls_to("Notify")[0]["shadow_abort_error"]["Error"] == "AwsServiceError"


def test_deploy_failures_do_not_try_to_stop_an_experiment():
    script = s.base_script()
    script["Deploy"] = s.error("AwsServiceError", "ValidationException")
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert "AbortShadowTest" not in result.states


# --- row 15 --------------------------------------------------------------------------------------------------
def test_every_lambda_task_retries_the_aws_recommended_errors():
    for name, state in ASL["States"].items():
        if state["Type"] == "Task" and state["Resource"].endswith("FunctionArn}"):
            retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert retried >= AWS_RECOMMENDED, name


def test_client_execution_timeout_is_retried():
    script = s.base_script()
    script["CreateModel"] = [s.error("Lambda.ClientExecutionTimeoutException"), s.created()]
    result = run(s.event(), script)
    assert result.status == "SUCCEEDED", (result.error, result.states)
    assert len(result.fakes.calls_to("CreateModel")) == 2 and result.states.count("CreateModel") == 1
