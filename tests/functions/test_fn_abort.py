"""`guardrail abort` (issue 15 §2), the ExecutionEnded side: the reason given to StopExecution (error
GuardrailAborted, cause "aborted by <who>: <why>") reaches the ABORTED notification, beside what the endpoint
serves, the shadow removed and the lock released."""

from __future__ import annotations

import json

import boto3
from botocore.stub import Stubber
from test_fn_faults import _ended, _ended_event, _experiment, _in_service, _table, _upload, sent  # noqa: F401

from functions.adapters import sagemaker
from functions.config import load_settings
from functions.steps.lock import acquire_lock

WHO = "arn:aws:sts::123456789012:assumed-role/operator/alice"


def test_the_abort_reason_reaches_the_notification(sent):  # noqa: F811
    _table()
    acquire_lock(_upload("v1"), "exec-a", load_settings())
    event = _ended_event("ABORTED")
    event["detail"] |= {"error": "GuardrailAborted", "cause": f"aborted by {WHO}: wrong training data"}
    with Stubber(sagemaker.client()) as sm:
        sm.add_response("describe_inference_experiment", _experiment("Running"))
        sm.add_response("stop_inference_experiment", {"InferenceExperimentArn": "arn:exp"})
        sm.add_response("describe_endpoint", _in_service())
        out = _ended(event)
    assert out.released and out.shadow["stopped"]
    [msg] = sent()
    payload = json.loads(msg["Message"].split("JSON payload:\n", 1)[1])
    assert payload["outcome"] == "ABORTED" and payload["error"] == "ExecutionAborted"
    assert payload["cause"].startswith(f"The execution was stopped before it finished: aborted by {WHO}: wrong training data.")
    assert "serves xgb-best-1-cfg" in payload["cause"] and "shadow removed" in payload["cause"]
    assert payload["details"]["stopped_by"] == {"error": "GuardrailAborted", "cause": f"aborted by {WHO}: wrong training data"}
    assert payload["cause"].count("wrong training data") == 1  # said once, up front
    assert "Item" not in boto3.client("dynamodb").get_item(TableName="guardrail-locks", Key={"pk": {"S": "lock#guardrail-endpoint"}})
