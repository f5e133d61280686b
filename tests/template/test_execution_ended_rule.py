"""The ExecutionEnded rule (issue 12 §2): this state machine's ABORTED / TIMED_OUT / FAILED executions, as AWS
sends them ("Step Functions Execution Status Change"), invoke ExecutionEndedFunction."""

from __future__ import annotations

import json

from moto.events.models import EventPattern
from test_sam_template import cfn  # noqa: F401 (the translated template fixture)


def _rule(cfn):  # noqa: F811
    return cfn["Resources"]["ExecutionEndedFunctionExecutionEnded"]["Properties"]


def _event(status: str, machine: str) -> dict:
    return {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
            "detail": {"status": status, "stateMachineArn": machine, "name": "x", "executionArn": "arn:x"}}  # fmt: skip


def test_the_rule_invokes_the_function_for_this_state_machines_unfinished_executions(cfn):  # noqa: F811
    props = _rule(cfn)
    assert props["Targets"][0]["Arn"] == {"Fn::GetAtt": ["ExecutionEndedFunction", "Arn"]}
    pattern = props["EventPattern"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": "GuardrailStateMachine"}]
    resolved = json.loads(json.dumps(pattern).replace('{"Ref": "GuardrailStateMachine"}', '"arn:sm:guardrail"'))
    matcher = EventPattern.load(json.dumps(resolved))
    for status in ("ABORTED", "TIMED_OUT", "FAILED"):
        assert matcher.matches_event(_event(status, "arn:sm:guardrail")), status
    assert not matcher.matches_event(_event("SUCCEEDED", "arn:sm:guardrail"))
    assert not matcher.matches_event(_event("RUNNING", "arn:sm:guardrail"))
    assert not matcher.matches_event(_event("ABORTED", "arn:sm:someone-else"))
    assert props["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
