"""Scripted step results for the state-machine tests, shaped like the Lambda code's output models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sfn_harness import LambdaError, Step

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "guardrail-endpoint"
MODEL = "bank-marketing"


def event(version: str = "v2-xgb-runnerup") -> dict[str, Any]:
    """An EventBridge S3 Object Created event (the execution input)."""
    return {
        "version": "0",
        "id": "5e3c1f7a-0000-4000-8000-000000000001",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::guardrail-models"],
        "detail": {
            "version": "0",
            "bucket": {"name": "guardrail-models"},
            "object": {"key": f"models/{MODEL}/{version}/model.tar.gz", "size": 1024, "etag": "abc123"},
            "reason": "PutObject",
        },
    }


def upload(version: str = "v2-xgb-runnerup", shadow: bool = False) -> dict[str, Any]:
    base = f"{MODEL}-{version}"
    prefix = f"models/{MODEL}/{version}/"
    return {
        "bucket": "guardrail-models",
        "key": prefix + "model.tar.gz",
        "etag": "abc123",
        "artifact_uri": f"s3://guardrail-models/{prefix}model.tar.gz",
        "prefix": prefix,
        "evaluation_key": prefix + "evaluation.json",
        "deployment_key": prefix + "deployment.json",
        "model_name": MODEL,
        "model_version": version,
        "endpoint_name": ENDPOINT,
        "strategy": "CANARY",
        "canary_percent": 25,
        "linear_step_percent": 25,
        "shadow": {"enabled": shadow, "sampling_percent": 50, "duration_seconds": 1 if shadow else 3600},
        "names": {
            "model": base,
            "endpoint_config": base,
            "shadow_variant": f"{base}-shadow",
            "error_alarm": f"{ENDPOINT}-{version}-5xx-rate",
            "latency_alarm": f"{ENDPOINT}-{version}-latency",
            "experiment": f"{ENDPOINT}-{version}-shadow",
        },
        "idempotency_key": f"upload#guardrail-models/{prefix}model.tar.gz#abc123",
    }


def lock(duplicate: bool = False) -> dict[str, Any]:
    return {
        "acquired": not duplicate,
        "duplicate": duplicate,
        "owner": "exec-1",
        "lock_key": f"lock#{ENDPOINT}",
        "idempotency_key": "upload#guardrail-models/models/bank-marketing/v2/model.tar.gz#abc123",
        "expires_at": 1_900_000_000,
    }


RELEASED = {"released": True, "lock_key": f"lock#{ENDPOINT}"}
GATE = {"passed": True, "auc": 0.93, "min_auc": 0.75, "max_auc_drop": 0.01, "xgboost_version": "3.0.5"}
PREFLIGHT = {
    "status": "PASSED",
    "artifact": "s3://guardrail-models/models/bank-marketing/v2-xgb-runnerup/model.tar.gz",
    "files": ["xgboost-model"],
    "models": [{"file": "xgboost-model", "format": "xgb_format", "num_features": 62}],
    "candidate_features": 62,
    "golden_rows": 20,
    "max_relative_difference": 0.0,
}
ALARMS = {
    "error_alarm": f"{ENDPOINT}-v2-5xx-rate",
    "latency_alarm": f"{ENDPOINT}-v2-latency",
    "names": [f"{ENDPOINT}-v2-5xx-rate", f"{ENDPOINT}-v2-latency"],
    "created": [f"{ENDPOINT}-v2-5xx-rate", f"{ENDPOINT}-v2-latency"],
}


def created(name: str = "bank-marketing-v2") -> dict[str, Any]:
    return {"name": name, "status": "created"}


def deployment(
    status: str = "IN_PROGRESS", mode: str = "UPDATE", attempts: int = 0, **extra: Any
) -> dict[str, Any]:
    return {
        "mode": mode,
        "endpoint_name": ENDPOINT,
        "target_config": "bank-marketing-v2",
        "previous_config": "bank-marketing-v1" if mode == "UPDATE" else None,
        "status": status,
        "endpoint_status": {"IN_PROGRESS": "Updating", "FAILED": "Failed"}.get(status, "InService"),
        "attempts": attempts,
        "poll_seconds": 0,
        "max_attempts": 4,  # deploy.poll_budget's answer (MaxPollAttempts in the test substitutions)
        **extra,
    }


def watch(alarm: bool = False, rolled_back: bool = False) -> dict[str, Any]:
    fired = [f"{ENDPOINT}-v2-latency"] if alarm else []
    return {
        "alarms": {name: ("ALARM" if name in fired else "OK") for name in ALARMS["names"]},
        "alarms_in_alarm": fired,
        "alarm": alarm,
        "rolled_back": rolled_back,
        "rollback_config": "bank-marketing-v1" if rolled_back else None,
        "settled": rolled_back,  # a scripted rollback has finished at once (test_asl_settle_and_abort polls)
        "rollback_polls": 0,
    }


def shadow(
    status: str = "RUNNING", done: bool = False, verdict: str | None = None, attempts: int = 0
) -> dict[str, Any]:
    return {
        "status": status,
        "experiment_name": f"{ENDPOINT}-v2-shadow",
        "endpoint_name": ENDPOINT,
        "production_variant": "v1",
        "shadow_variant": "v2",
        "shadow_model": "bank-marketing-v2",
        "sampling_percent": 50,
        "done": done,
        "verdict": verdict,
        "attempts": attempts,
        "poll_seconds": 0,
        "method": "msprt",
        "settled": status == "CONCLUDED",  # a scripted conclusion is done at once (test_asl_settle_and_abort polls)
    }


def data_check(flags: list[str] | None = None) -> dict[str, Any]:
    """What check_data writes after the watch (a breach is notified by the function itself)."""
    return {
        "status": "BREACH" if flags else "OK",
        "flags": flags or [],
        "endpoint_name": ENDPOINT,
        "variant": "v2",
        "model": "bank-marketing-v2",
        "requests": 120,
        "rows": 120,
        "notifications": ["msg-drift"] if flags else [],
    }


def notify(document: dict[str, Any]) -> dict[str, Any]:
    """The notify fake: answers like the real step, from whatever document it gets."""
    outcome = document.get("outcome", "FAILED")
    return {
        "message_id": "msg-1",
        "outcome": outcome,
        "subject": f"Guardrail {outcome}",
        "payload": {
            "outcome": outcome,
            "endpoint": ENDPOINT,
            "model": "bank-marketing/v2",
            "summary": outcome,
            "timestamp": "2026-11-23T12:00:00Z",
        },
    }


def base_script(shadow_enabled: bool = False) -> dict[str, Step | list[Step]]:
    """Every step answers like a guarded update that succeeds (tests override single steps)."""
    return {
        "ParseUpload": upload(shadow=shadow_enabled),
        "AcquireLock": lock(),
        "ReleaseLock": RELEASED,
        "QualityGate": GATE,
        "PreFlight": PREFLIGHT,
        "CreateModel": created() | {"model_data_url": "s3://guardrail-models/deployed/ab12/model.tar.gz", "sha256": "ab12"},
        "CreateEndpointConfig": created() | {"variant": "AllTraffic"},
        "EnsureAlarms": ALARMS,
        "Deploy": deployment("IN_PROGRESS"),
        "CheckDeployment": [
            deployment("IN_PROGRESS", attempts=1),
            deployment("SUCCEEDED", attempts=2),
            watch(),
        ],
        "Rollback": watch(alarm=True, rolled_back=True),
        "CheckData": data_check(),
        "Housekeeping": {"keep_versions": 2, "serving_config": "bank-marketing-v2", "deleted_alarms": ["old-alarm"]},
        "Notify": notify,
    }


def error(name: str, message: str = "") -> LambdaError:
    return LambdaError(name, message or f"{name} raised by the test")


def cause_message(cause: str | None) -> str:
    """The errorMessage inside a Lambda error's Cause (a JSON string)."""
    return json.loads(cause or "{}").get("errorMessage", "")
