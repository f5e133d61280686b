"""The PreFlight state: after the quality gate, before any SageMaker resource; a rejection is REJECTED."""

from __future__ import annotations

import sfn_steps as s
from sfn_harness import Execution, run
from test_asl_branches import assert_ended

MINE = ("ParseUpload", "QualityGate", "PreFlight", "CreateModel", "Notify")


def execute(script: dict) -> Execution:
    """Like test_asl_branches.execute, but holds only the documents around pre-flight to functions.models (later
    steps' fakes follow their own owners' model changes)."""
    result = run(s.event(), script)
    problems = [p for p in result.fakes.problems if p.startswith(MINE)]
    assert problems == [], problems
    return result


def test_preflight_runs_between_quality_gate_and_create_model_and_is_stored():
    result = execute(s.base_script())
    assert_ended(result, "DEPLOYED")
    states = result.states
    assert states.index("QualityGate") < states.index("PreFlight") < states.index("CreateModel")
    assert states.count("PreFlight") == 1
    (create_model_input,) = result.fakes.calls_to("CreateModel")
    assert create_model_input["preflight"]["status"] == "PASSED"
    assert create_model_input["preflight"]["models"][0]["num_features"] == 62


def test_preflight_rejection_is_rejected_and_touches_nothing():
    script = s.base_script()
    script["PreFlight"] = s.error("ModelRejected", "Model rejected by pre-flight: the serving container cannot load "
                                                   "it: Model xgboost-model cannot be loaded")
    result = execute(script)
    assert_ended(result, "REJECTED")
    for step in ("CreateModel", "CreateEndpointConfig", "EnsureAlarms", "Deploy"):
        assert result.fakes.calls_to(step) == [], step
    assert result.states[result.states.index("PreFlight") + 1] == "Rejected"
    (notification,) = result.notifications
    assert notification.error is not None and notification.error.error == "ModelRejected"
    assert "pre-flight" in notification.error.message


def test_preflight_skipped_by_deployment_json_carries_on():
    script = s.base_script()
    script["ParseUpload"] = {**s.upload(), "preflight": False}
    script["PreFlight"] = {**s.PREFLIGHT, "status": "SKIPPED", "files": [], "models": [],
                           "notes": ['deployment.json sets "preflight": false']}
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    (call,) = result.fakes.calls_to("PreFlight")
    assert call["upload"]["preflight"] is False
    assert result.fakes.calls_to("CreateModel")[0]["preflight"]["status"] == "SKIPPED"


def test_preflight_throttling_is_retried_and_other_errors_fail():
    script = s.base_script()
    script["PreFlight"] = [s.error("Throttled"), s.PREFLIGHT]
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert len(result.fakes.calls_to("PreFlight")) == 2 and result.states.count("PreFlight") == 1

    script = s.base_script()
    script["PreFlight"] = s.error("ArtifactNotFound", "s3://guardrail-models/... is gone")
    result = execute(script)
    assert_ended(result, "FAILED", status="FAILED")
    assert result.fakes.calls_to("CreateModel") == []
    assert result.notifications[0].error.error == "ArtifactNotFound"
