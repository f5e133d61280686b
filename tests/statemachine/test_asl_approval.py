"""Approval gates (issue 15 §1) on moto's Step Functions interpreter: the state machine waits in a
`lambda:invoke.waitForTaskToken` task and goes on only on SendTaskSuccess APPROVED; SendTaskFailure
ApprovalRejected or the timeout's default (reject unless set) ends NOT_APPROVED without touching the endpoint,
or concludes the shadow test with the shadow removed."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import sfn_steps as s
from sfn_harness import LambdaError
from test_asl_branches import assert_ended, execute
from test_asl_settle_and_abort import _concluded, _shadow_script

OPERATOR = "arn:aws:sts::123456789012:assumed-role/operator/alice"


def _approval(before_update: bool = False, before_promote: bool = False, timeout: int = 30, on_timeout: str = "reject") -> dict:
    return {"before_update": before_update, "before_promote": before_promote, "timeout_seconds": timeout,
            "on_timeout": on_timeout}  # fmt: skip


def _requested(doc: dict[str, Any]) -> dict[str, Any]:
    return {"execution": "exec-1", "kind": doc["kind"], "key": "approval#exec-1", "message_id": "m-1",
            "expires_at": 1_900_000_000}  # fmt: skip


def answer(how: str, reason: str = "looked fine", delay: float = 0.05):
    """The approval fake: records the request, then answers it from another thread like `guardrail approve`."""

    def fake(doc: dict[str, Any]) -> dict[str, Any]:
        token = doc["token"]

        def send() -> None:
            time.sleep(delay)
            sfn = boto3.client("stepfunctions")
            decided = {"kind": doc["kind"], "decided_by": OPERATOR, "reason": reason, "decided_at": "2026-11-29T19:00:00+00:00"}
            if how == "approve":
                sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "APPROVED", **decided}))
            elif how == "reject":
                sfn.send_task_failure(taskToken=token, error="ApprovalRejected", cause=json.dumps(decided))

        if how in ("approve", "reject"):
            threading.Thread(target=send, daemon=True).start()
        return _requested(doc)

    return fake


def _update_script(**approval: Any) -> dict:
    script = s.base_script()
    script["ParseUpload"] = s.upload() | {"approval": _approval(**approval)}
    script["CreateEndpointConfig"] = s.created() | {"variant": "AllTraffic", "live_config": "bank-marketing-v1"}
    return script


def test_update_waits_for_approval_and_deploys_once_approved():
    script = _update_script(before_update=True)
    script["Approval"] = answer("approve")
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    [request] = result.fakes.calls_to("Approval")
    assert request["kind"] == "update" and request["token"] and request["snapshot"]["endpoint_config"]["live_config"]
    assert result.states.index("AskUpdateApproval") < result.states.index("Deploy")
    [notified] = result.notifications
    assert notified.approval["decided_by"] == OPERATOR and notified.approval["reason"] == "looked fine"


def test_rejected_update_never_touches_the_endpoint():
    script = _update_script(before_update=True)
    script["Approval"] = answer("reject", reason="not during the sale")
    result = execute(script)
    assert_ended(result, "NOT_APPROVED")
    assert "Deploy" not in result.states and result.fakes.calls_to("Deploy") == []
    approval = result.notifications[0].approval
    assert approval["Error"] == "ApprovalRejected"
    assert json.loads(approval["Cause"]) == {"kind": "update", "decided_by": OPERATOR, "reason": "not during the sale",
                                             "decided_at": "2026-11-29T19:00:00+00:00"}  # fmt: skip


def test_unanswered_update_takes_the_default_reject():
    script = _update_script(before_update=True, timeout=1)
    script["Approval"] = answer("silence")
    started = time.monotonic()
    result = execute(script)
    assert_ended(result, "NOT_APPROVED")
    assert time.monotonic() - started >= 1  # TimeoutSecondsPath: the upload's timeout_seconds
    assert result.notifications[0].approval["Error"] == "States.Timeout"
    assert result.fakes.calls_to("Deploy") == []


def test_unanswered_update_with_on_timeout_approve_deploys():
    script = _update_script(before_update=True, timeout=1, on_timeout="approve")
    script["Approval"] = answer("silence")
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert "UpdateApprovedOnTimeout" in result.states
    approval = result.notifications[0].approval
    assert approval["decision"] == "APPROVED" and approval["decided_by"] == "timeout"
    assert approval["reason"] == "no answer within 1 s; on_timeout is approve"


def test_no_approval_for_a_first_deployment_or_when_not_asked():
    first = _update_script(before_update=True)
    first["CreateEndpointConfig"] = s.created() | {"variant": "AllTraffic", "live_config": None}
    first["Approval"] = answer("reject")
    assert_ended(execute(first), "DEPLOYED")
    off = _update_script(before_update=False, before_promote=True)
    off["Approval"] = answer("reject")
    result = execute(off)
    assert_ended(result, "DEPLOYED")
    assert result.fakes.calls_to("Approval") == []


def test_approval_function_failure_fails_without_deploying():
    script = _update_script(before_update=True)
    script["Approval"] = LambdaError("Throttled", "SNS throttled")
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.fakes.calls_to("Deploy") == []


def _promote_script(verdict: str = "PROMOTE", policy: dict | None = None, **approval: Any) -> dict:
    script = _shadow_script()
    script["ParseUpload"] = s.upload(shadow=True) | {"approval": _approval(before_promote=True, **approval)}
    script["CheckShadowTest"] = s.shadow("ENDED", done=True, verdict=verdict, attempts=1) | {"policy": policy}
    script["ConcludeShadowTest"] = lambda doc: _concluded(doc["shadow"]["verdict"], True, 0)
    return script


def test_promotion_waits_for_approval():
    script = _promote_script()
    script["Approval"] = answer("approve")
    result = execute(script)
    assert_ended(result, "PROMOTED")
    [request] = result.fakes.calls_to("Approval")
    assert request["kind"] == "promote" and request["snapshot"]["shadow"]["verdict"] == "PROMOTE"
    [conclude] = result.fakes.calls_to("ConcludeShadowTest")
    assert conclude["shadow"]["verdict"] == "PROMOTE"


def test_rejected_promotion_removes_the_shadow():
    script = _promote_script()
    script["Approval"] = answer("reject", reason="wait for Monday")
    result = execute(script)
    assert_ended(result, "NOT_APPROVED")
    [conclude] = result.fakes.calls_to("ConcludeShadowTest")
    assert conclude["shadow"]["verdict"] == "REJECT"  # StopInferenceExperiment: shadow Remove, production Retain
    assert "Promoted" not in result.states and result.fakes.calls_to("AbortShadowTest") == []


def test_unanswered_promotion_is_not_promoted():
    script = _promote_script(timeout=1)
    script["Approval"] = answer("silence")
    result = execute(script)
    assert_ended(result, "NOT_APPROVED")
    assert result.fakes.calls_to("ConcludeShadowTest")[0]["shadow"]["verdict"] == "REJECT"


def test_only_a_promoting_verdict_asks():
    rejected = _promote_script(verdict="REJECT")
    rejected["Approval"] = answer("approve")
    result = execute(rejected)
    assert_ended(result, "SHADOW_REJECTED")
    assert result.fakes.calls_to("Approval") == []
    # INCONCLUSIVE promotes only when the policy's default says so: then it asks
    inconclusive = _promote_script(verdict="INCONCLUSIVE", policy={"on_inconclusive": "Promote"})
    inconclusive["Approval"] = answer("reject")
    result = execute(inconclusive)
    assert_ended(result, "NOT_APPROVED")
    assert len(result.fakes.calls_to("Approval")) == 1
    removed = _promote_script(verdict="INCONCLUSIVE", policy=None)  # the thresholds method has no policy
    removed["Approval"] = answer("approve")
    result = execute(removed)
    assert_ended(result, "INCONCLUSIVE")
    assert result.fakes.calls_to("Approval") == []


def test_approval_function_failure_stops_the_shadow_test():
    script = _promote_script()
    script["Approval"] = LambdaError("Throttled", "SNS throttled")
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert len(result.fakes.calls_to("AbortShadowTest")) == 1 and "ConcludeShadowTest" not in result.states


def test_abort_while_waiting_for_approval_ends_aborted_at_once():
    """StopExecution during the wait: ABORTED at once (not after the gate's 600 s) with its error and cause
    (local/sfn_tasks.py, as on AWS); nothing after the gate runs: ExecutionEnded (not a state) releases the lock
    and notifies."""
    script = _update_script(before_update=True, timeout=600)  # run() gives up after 60 s

    def stop(doc):
        arn = f"arn:aws:states:us-east-1:123456789012:execution:guardrail:{doc['execution']['Name']}"

        def later() -> None:
            time.sleep(0.05)
            boto3.client("stepfunctions").stop_execution(executionArn=arn, error="GuardrailAborted", cause="aborted by me: no")

        threading.Thread(target=later, daemon=True).start()
        return _requested(doc)

    script["Approval"] = stop
    result = execute(script)
    assert (result.status, result.error, result.cause) == ("ABORTED", "GuardrailAborted", "aborted by me: no")
    assert result.states[-1] == "AskUpdateApproval" and result.fakes.calls_to("Notify") == []
