"""People in the loop (issue 15 §1, §2): answer an approval gate, abort a running guarded deployment.

- `decide` (`guardrail approve|reject <execution>`): reads the task token the approval function stored as
  `approval#<execution>` in the lock table and answers it, SendTaskSuccess {decision: APPROVED, ...} or
  SendTaskFailure ApprovalRejected with a JSON cause; both carry who decided (STS GetCallerIdentity) and why.
- `abort` (`guardrail abort <endpoint|execution>`): StopExecution with error GuardrailAborted and the reason
  as cause. The ExecutionEnded function (on the execution's ABORTED status-change event) then stops a running
  shadow experiment (shadow removed), leaves an update in progress to SageMaker (it finishes or rolls back by
  itself: a blue/green update cannot be stopped half-way), releases the lock and notifies ABORTED with the
  reason and what the endpoint serves.
Every call is plain boto3, so it works on the local cloud and on AWS alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

ABORT_ERROR = "GuardrailAborted"
REJECT_ERROR = "ApprovalRejected"  # the approval task's Catch (statemachine/guardrail.asl.json)
GONE = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


class OperatorError(Exception):
    """Something the operator can fix or should know; one line."""


def caller(sts: Any) -> str:
    """Who is deciding: the caller's ARN (an assumed role names the session, e.g. the person)."""
    return str(sts.get_caller_identity()["Arn"])


def execution_arn(name_or_arn: str, state_machine_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name_or_arn}"


def _running(sfn: Any, arn: str) -> dict[str, Any]:
    try:
        described = sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ExecutionDoesNotExist", "InvalidArn"):
            raise OperatorError(f"no execution {arn} (`guardrail status` lists the last ones)") from None
        raise
    if described["status"] != "RUNNING":
        raise OperatorError(f"execution {described['name']} is not running: it ended {described['status']}")
    return described


def resolve(sfn: Any, ddb: Any, table: str | None, state_machine_arn: str, endpoint: str, ref: str) -> str:
    """The execution ARN for an execution ARN or name, or for the endpoint: the running execution that holds
    its lock (else the only running execution of the state machine)."""
    if ref != endpoint:
        return execution_arn(ref, state_machine_arn)
    if table:
        item = ddb.get_item(TableName=table, Key={"pk": {"S": f"lock#{endpoint}"}}, ConsistentRead=True).get("Item")
        held = item or {}  # functions/steps/lock.py: execution_name (and execution_arn) of the holder
        owner = held.get("execution_arn", {}).get("S") or held.get("execution_name", {}).get("S")
        if owner:
            return execution_arn(owner, state_machine_arn)
    running = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")["executions"]
    if len(running) == 1:
        return str(running[0]["executionArn"])
    if not running:
        raise OperatorError(f"no guarded deployment is running on {endpoint}")
    names = ", ".join(e["name"] for e in running)
    raise OperatorError(f"{len(running)} executions are running ({names}) and none holds the lock: name one")


def decide(sfn: Any, ddb: Any, sts: Any, table: str, arn: str, approve: bool, reason: str | None,
           now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """Answer the approval gate `arn` waits in. Returns the decision sent."""
    described = _running(sfn, arn)
    name = described["name"]
    item = ddb.get_item(TableName=table, Key={"pk": {"S": f"approval#{name}"}}, ConsistentRead=True).get("Item")
    if not item:
        raise OperatorError(f"execution {name} has not asked for an approval (no approval#{name} in {table})")
    decision = {
        "kind": item.get("kind", {}).get("S"),
        "decided_by": caller(sts),
        "reason": reason,
        "decided_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    token = item["task_token"]["S"]
    try:
        if approve:
            sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "APPROVED", **decision}))
        else:
            sfn.send_task_failure(taskToken=token, error=REJECT_ERROR, cause=json.dumps(decision))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in GONE:
            raise OperatorError(
                f"execution {name} is no longer waiting for this approval (answered already or timed out at "
                f"{item.get('waits_until', {}).get('S', '?')})"
            ) from None
        raise
    return {"decision": "APPROVED" if approve else "REJECTED", "execution": name, **decision}


def abort(sfn: Any, sts: Any, arn: str, reason: str | None) -> dict[str, Any]:
    """StopExecution with the reason as cause; ExecutionEnded does the rest (see the module docstring)."""
    described = _running(sfn, arn)
    by = caller(sts)
    cause = f"aborted by {by}" + (f": {reason}" if reason else "")
    sfn.stop_execution(executionArn=arn, error=ABORT_ERROR, cause=cause)
    return {"execution": described["name"], "aborted_by": by, "reason": reason, "cause": cause}


GATES = {"AskUpdateApproval": "update", "AskPromotionApproval": "promotion"}  # statemachine/guardrail.asl.json


def waiting_for(sfn: Any, arn: str) -> str | None:
    """What a running execution waits for, when it waits in an approval gate (for `guardrail status`)."""
    events = [e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn) for e in page["events"]]
    for event in sorted(events, key=lambda e: e["id"], reverse=True):  # newest first
        if event["type"].endswith("StateExited"):
            return None  # the last state it entered has ended: not waiting in it
        if event["type"].endswith("StateEntered"):
            gate = GATES.get(event["stateEnteredEventDetails"]["name"])
            name = arn.rsplit(":", 1)[-1]
            return f"waiting for approval of the {gate}: guardrail approve|reject {name}" if gate else None
    return None
