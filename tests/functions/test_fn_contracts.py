"""Saved per-state inputs parse with their state's model; error classes carry the contract's names."""

from __future__ import annotations

import pytest
from fn_support import STATES_DIR, load_state
from pydantic import ValidationError

from functions import errors
from functions import models as m

STATE_MODELS = {
    "parse_upload": m.ParseUploadInput,
    "acquire_lock": m.AcquireLockInput,
    "release_lock": m.ReleaseLockInput,
    "quality_gate": m.QualityGateInput,
    "preflight": m.PreFlightInput,
    "create_model": m.CreateModelInput,
    "create_endpoint_config": m.CreateEndpointConfigInput,
    "ensure_alarms": m.EnsureAlarmsInput,
    "deploy": m.DeployInput,
    "check_deployment": m.CheckDeploymentInput,
    "rollback": m.RollbackInput,
    "start_shadow_test": m.StartShadowTestInput,
    "check_shadow_test": m.CheckShadowTestInput,
    "conclude_shadow_test": m.ConcludeShadowTestInput,
    "notify": m.NotifyInput,
    "housekeeping": m.HousekeepingInput,
}


def test_every_state_has_a_saved_input() -> None:
    assert sorted(p.stem for p in STATES_DIR.glob("*.json")) == sorted(STATE_MODELS)


@pytest.mark.parametrize("step", sorted(STATE_MODELS))
def test_saved_input_parses(step: str) -> None:
    parsed = STATE_MODELS[step].model_validate(load_state(step))
    assert parsed.execution == "example-execution-0001"


def test_contract_error_names() -> None:
    for name in (
        "InvalidTrigger",
        "ArtifactNotFound",
        "InvalidArtifact",
        "EndpointLocked",
        "ModelRejected",
        "EndpointNotReady",
        "Throttled",
        "AlarmNotFound",
        "DeploymentFailed",
        "AwsServiceError",
    ):
        cls = getattr(errors, name)
        assert issubclass(cls, errors.GuardrailError)
        assert cls.__name__ == name


def test_event_must_be_an_s3_object_created_event() -> None:
    event = load_state("parse_upload")
    with pytest.raises(ValidationError, match="detail-type"):
        m.ParseUploadInput.model_validate({**event, "detail-type": "Object Deleted"})
    with pytest.raises(ValidationError, match="source"):
        m.ParseUploadInput.model_validate({**event, "source": "aws.ec2"})
    with pytest.raises(ValidationError, match="detail"):
        m.ParseUploadInput.model_validate({k: v for k, v in event.items() if k != "detail"})


def test_execution_name_forms() -> None:
    event = load_state("parse_upload")
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:run-7"
    assert m.ParseUploadInput.model_validate({**event, "execution": "run-7"}).execution == "run-7"
    assert m.ParseUploadInput.model_validate({**event, "execution": arn}).execution == "run-7"
    assert m.ParseUploadInput.model_validate({**event, "execution": {"Id": arn}}).execution == "run-7"


def test_deployment_request_limits() -> None:
    assert (
        m.DeploymentRequest.model_validate({"strategy": "LINEAR", "linear_step_percent": 20}).strategy
        == "LINEAR"
    )
    for bad in (
        {"strategy": "BLUE"},
        {"canary_percent": 60},
        {"linear_step_percent": 5},
        {"shadow": {"sampling_percent": 0}},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            m.DeploymentRequest.model_validate(bad)


def test_notify_input_never_fails() -> None:
    for doc in (
        {},
        {"upload": "x", "error": "boom", "outcome": 5},
        {"error": {"Cause": "not json"}},
        [],
        None,
    ):
        parsed = m.NotifyInput.model_validate(doc)
        assert parsed.outcome in ("FAILED",)
    error = m.ErrorInfo.model_validate(
        {"Error": "InvalidTrigger", "Cause": '{"errorMessage": "bad key", "errorType": "X"}'}
    )
    assert (error.error, error.message) == ("InvalidTrigger", "bad key")


@pytest.mark.parametrize("step", sorted(STATE_MODELS))
def test_every_step_has_a_thin_handler(step: str) -> None:
    import importlib

    module = importlib.import_module(f"functions.handlers.{step}")
    assert callable(module.handler)
    assert module.__doc__  # says what the step writes


def test_handler_import_fails_fast_without_its_resources(monkeypatch) -> None:
    import importlib
    import sys

    from functions.config import ConfigurationError, reset_settings

    monkeypatch.delenv("TOPIC_ARN")
    reset_settings()
    monkeypatch.delitem(sys.modules, "functions.handlers.notify", raising=False)
    with pytest.raises(ConfigurationError, match="TOPIC_ARN"):
        importlib.import_module("functions.handlers.notify")
    monkeypatch.delitem(sys.modules, "functions.handlers.notify", raising=False)


def test_document_wrapping_and_execution_name() -> None:
    from functions.handlers._runtime import execution_name, unwrap

    doc = unwrap({"document": {"upload": {}}, "execution": {"Name": "run-1"}})
    assert doc == {"upload": {}, "execution": {"Name": "run-1"}} and execution_name(doc) == "run-1"
    assert execution_name({"execution": "arn:aws:states:us-east-1:1:execution:sm:run-2"}) == "run-2"
    assert execution_name({}) is None
    with pytest.raises(errors.InvalidInput):
        unwrap("text")
