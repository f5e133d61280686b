"""Static checks of statemachine/guardrail.asl.json: a well-formed graph that moto's interpreter can run."""

from __future__ import annotations

import json
import re

import pytest
from sfn_harness import ASL_PATH, STEP_MODELS

ASL = json.loads(ASL_PATH.read_text())  # stays plain JSON: substitutions are only ever inside strings
STATES = ASL["States"]
LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# Intrinsics moto 5.2.5's interpreter implements (and AWS documents); anything else fails only at run time.
SUPPORTED_INTRINSICS = {"States.StringToJson", "States.MathAdd", "States.Format", "States.JsonToString"}


def targets(state: dict) -> list[str]:
    found = [state[k] for k in ("Next", "Default") if k in state]
    found += [c["Next"] for c in state.get("Catch", [])]
    found += [c["Next"] for c in state.get("Choices", [])]
    return found


def lambda_tasks() -> dict[str, dict]:
    return {
        name: s
        for name, s in STATES.items()
        if s["Type"] == "Task" and s["Resource"].endswith("FunctionArn}")
    }


def test_every_target_exists_and_every_state_is_reachable():
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        assert name in STATES, f"transition to unknown state {name}"
        seen.add(name)
        todo += targets(STATES[name])
    assert seen == set(STATES), f"unreachable: {set(STATES) - seen}"


def test_only_terminal_states_end():
    for name, state in STATES.items():
        if state["Type"] in ("Succeed", "Fail"):
            assert not targets(state)
        elif state["Type"] != "Choice":
            assert "Next" in state and not state.get("End"), name


def test_every_path_ends_through_release_lock():
    """Walking back from the terminal states, everything before `Finish` goes through ReleaseLock."""
    into_finish = [n for n, s in STATES.items() if "Finish" in targets(s)]
    assert set(into_finish) == {"ReleaseLock"}
    terminals = [n for n, s in STATES.items() if s["Type"] in ("Succeed", "Fail")]
    assert sorted(terminals) == ["Done", "ExecutionFailed"]
    assert {n for n, s in STATES.items() if set(targets(s)) & set(terminals)} == {"Finish"}


SHADOW_RUNNING = ("StartShadowTest", "CheckShadowTest", "ConcludeShadowTest")


def test_lambda_tasks_retry_service_errors_and_catch_everything():
    for name, state in lambda_tasks().items():
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert retried >= LAMBDA_ERRORS, name
        for retry in state["Retry"]:
            assert retry["MaxAttempts"] >= 1 and retry["BackoffRate"] >= 1, name
        catches = state["Catch"]
        assert catches[-1]["ErrorEquals"] == ["States.ALL"], f"{name}: States.ALL must come last"
        assert all(c["ResultPath"].startswith("$.") for c in catches), name
        if name == "CheckData":  # a failed data check must not turn a good deployment into FAILED
            assert catches[-1]["Next"] == "Deployed" and catches[-1]["ResultPath"] == "$.data_check_error"
        elif name in SHADOW_RUNNING:  # the experiment may be running: stop it before FAILED (audit row 8)
            assert catches[-1]["Next"] == "AbortShadowTest" and catches[-1]["ResultPath"] == "$.error", name
        elif name == "AbortShadowTest":  # keeps the original $.error
            assert catches[-1]["Next"] == "Failed" and catches[-1]["ResultPath"] == "$.shadow_abort_error"
        elif name == "Housekeeping":  # a failed clean-up is reported; the deployment's outcome stands (issue 14 §6)
            assert catches[-1]["Next"] == "Notify" and catches[-1]["ResultPath"] == "$.housekeeping_error"
        elif name not in ("Notify", "ReleaseLock"):
            assert catches[-1]["Next"] == "Failed" and catches[-1]["ResultPath"] == "$.error", name
        if name not in ("Notify", "ReleaseLock", "Housekeeping"):  # housekeeping skips an unsettled endpoint
            assert {"Throttled", "EndpointNotReady"} <= retried, name


def test_each_step_result_is_stored_at_its_contract_key():
    keys = {name: s["ResultPath"] for name, s in lambda_tasks().items()}
    assert keys == {
        "ParseUpload": "$.upload",
        "AcquireLock": "$.lock",
        "QualityGate": "$.gate",
        "PreFlight": "$.preflight",
        "CreateModel": "$.model",
        "CreateEndpointConfig": "$.endpoint_config",
        "EnsureAlarms": "$.alarms",
        "StartShadowTest": "$.shadow",
        "CheckShadowTest": "$.shadow",
        "ConcludeShadowTest": "$.shadow",
        "Deploy": "$.deployment",
        "CheckDeployment": "$.deployment",
        "CheckAlarmsAfterWatch": "$.watch",
        "Rollback": "$.watch",
        "AbortShadowTest": "$.shadow_abort",
        "CheckData": "$.data_check",
        "Housekeeping": "$.housekeeping",
        "Notify": "$.notification",
        "ReleaseLock": "$.release",
    }
    # Every Lambda step of the contract is used, each through its own placeholder.
    used = {re.fullmatch(r"\$\{(\w+)FunctionArn\}", s["Resource"]).group(1) for s in lambda_tasks().values()}
    assert used | {"Approval"} == set(STEP_MODELS)  # Approval: through lambda:invoke.waitForTaskToken (below)


def test_outcomes_are_set_by_pass_states_and_notified():
    outcomes = {n: s["Result"] for n, s in STATES.items() if s.get("ResultPath") == "$.outcome"}
    assert set(outcomes.values()) == {
        "DEPLOYED", "PROMOTED", "ROLLED_BACK", "REJECTED", "SHADOW_REJECTED", "INCONCLUSIVE", "FAILED", "DUPLICATE",
        "CHANGED_EXTERNALLY",  # issue 12 §6
        "SUPERSEDED",  # issue 12 §4: a newer upload took this waiting one's turn
        "DEPLOYED_UNVERIFIED",  # issue 11 §3: too few requests, EVIDENCE_POLICY accept
        "NOT_APPROVED",  # issue 15 §1: an approval gate said no
    }  # fmt: skip
    for name, value in outcomes.items():
        assert STATES[name]["Type"] == "Pass"
        # A deployment that stands is cleaned up after first (issue 14 §6), then every outcome is notified.
        cleaned = value in ("DEPLOYED", "DEPLOYED_UNVERIFIED", "PROMOTED")
        assert STATES[name]["Next"] == ("ReleaseLock" if value == "DUPLICATE" else "Housekeeping" if cleaned else "Notify")
    assert STATES["Housekeeping"]["Next"] == "Notify"


@pytest.mark.parametrize("name", [n for n, s in STATES.items() if s["Type"] == "Wait"])
def test_waits_read_their_seconds_from_the_document(name):
    # Seconds come from substituted parameters via $.timing (numbers), never from a literal.
    assert "SecondsPath" in STATES[name] and "Seconds" not in STATES[name]


def test_intrinsics_are_ones_moto_supports():
    used = set(re.findall(r"(States\.\w+)\(", ASL_PATH.read_text()))
    assert used <= SUPPORTED_INTRINSICS, used - SUPPORTED_INTRINSICS


def test_placeholders_only_inside_strings():
    text = ASL_PATH.read_text()
    for match in re.finditer(r"\$\{\w+\}", text):
        line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
        assert line.count('"') >= 2, line


APPROVAL_TASKS = {n: s for n, s in STATES.items() if s.get("Resource", "").endswith(".waitForTaskToken")}


def test_approval_gates_wait_for_a_task_token_with_a_timeout_and_take_every_answer():
    """Issue 15 §1: the approval function gets $$.Task.Token; the task waits at most the upload's
    timeout_seconds (no HeartbeatSeconds: nobody beats while a person decides); a rejection, a timeout and any
    other failure each have their own way out."""
    assert sorted(APPROVAL_TASKS) == ["AskPromotionApproval", "AskUpdateApproval"]
    for name, state in APPROVAL_TASKS.items():
        assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
        assert state["Parameters"]["FunctionName"] == "${ApprovalFunctionArn}"
        assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
        assert state["TimeoutSecondsPath"] == "$.upload.approval.timeout_seconds" and "HeartbeatSeconds" not in state
        catches = [(c["ErrorEquals"], c["ResultPath"]) for c in state["Catch"]]
        assert catches == [(["ApprovalRejected"], "$.approval"), (["States.Timeout"], "$.approval"),
                           (["States.ALL"], "$.error")], name  # fmt: skip
        assert {e for r in state["Retry"] for e in r["ErrorEquals"]} >= LAMBDA_ERRORS
    assert STATES["AskUpdateApproval"]["Catch"][-1]["Next"] == "Failed"
    assert STATES["AskPromotionApproval"]["Catch"][-1]["Next"] == "AbortShadowTest"  # the experiment is running
    # Only the gates lead to Deploy's approval / ConcludeShadowTest's promotion
    assert STATES["UpdateApprovalRequired"]["Default"] == "Deploy"
    assert STATES["PromotionApprovalRequired"]["Default"] == "ConcludeShadowTest"
