"""Shared constants and builders for tests/functions (imported as `fn_support`)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATES_DIR = ROOT / "events" / "states"
BUCKET = "guardrail-models"
ENDPOINT = "guardrail-endpoint"
ROLE = "arn:aws:iam::123456789012:role/guardrail-sagemaker"
SHADOW_ROLE = "arn:aws:iam::123456789012:role/guardrail-shadow-experiment"
TOPIC = "arn:aws:sns:us-east-1:123456789012:guardrail-notifications"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"

ENV = {
    "TABLE_NAME": "guardrail-locks",
    "TOPIC_ARN": TOPIC,
    "MODEL_BUCKET": BUCKET,
    "ENDPOINT_NAME": ENDPOINT,
    "MODEL_PREFIX": "models/",
    "SAGEMAKER_ROLE_ARN": ROLE,
    "SHADOW_EXPERIMENT_ROLE_ARN": SHADOW_ROLE,
    "DATA_CAPTURE_URI": f"s3://{BUCKET}/capture",
    "SERVING_IMAGE": IMAGE,
    "INSTANCE_TYPE": "ml.m5.large",
    "INSTANCE_COUNT": "2",
    "DEFAULT_STRATEGY": "CANARY",
    "CANARY_PERCENT": "25",
    "LINEAR_STEP_PERCENT": "25",
    "WAIT_INTERVAL_SECONDS": "60",
    "TERMINATION_WAIT_SECONDS": "30",
    "MAX_EXECUTION_TIMEOUT_SECONDS": "900",
    "ALARM_PERIOD_SECONDS": "60",
    "ALARM_EVALUATION_PERIODS": "1",
    "ERROR_RATE_THRESHOLD": "0.05",
    "LATENCY_THRESHOLD_MICROS": "200000",
    "MIN_AUC": "0.75",
    "MAX_AUC_DROP": "0.01",
    "MAX_DISPARATE_IMPACT_DEVIATION": "0.2",
    "MAX_POSITIVE_PROPORTION_DIFFERENCE": "0.2",
    "SHADOW_SAMPLING_PERCENT": "50",
    "SHADOW_DURATION_SECONDS": "120",
    "SHADOW_MIN_INVOCATIONS": "20",
}


def load_state(step: str) -> dict[str, Any]:
    return json.loads((STATES_DIR / f"{step}.json").read_text())


def s3_event(key: str, *, bucket: str = BUCKET, version_id: str | None = "v1", etag: str = "abc123") -> dict:
    obj: dict[str, Any] = {"key": key, "size": 1234, "etag": etag, "sequencer": "00"}
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": "6e5a1c2e-0000-4000-8000-000000000001",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": obj, "reason": "PutObject"},
        "execution": {"Name": "exec-1", "Id": "arn:aws:states:us-east-1:123456789012:execution:sm:exec-1"},
    }


def evaluation(**overrides: Any) -> dict[str, Any]:
    """A valid evaluation.json (functions.evaluation.ModelEvaluation)."""
    metrics = {
        "auc": 0.93,
        "accuracy": 0.9,
        "precision": 0.6,
        "recall": 0.5,
        "f1": 0.55,
        "log_loss": 0.2,
        "brier": 0.07,
        "threshold": 0.5,
        "rows": 1000,
        "positives": 110,
        "predicted_positive_rate": 0.1,
    }
    metrics.update(overrides.pop("metrics", {}))
    doc: dict[str, Any] = {
        "model_name": "xgb-best",
        "created_at": "2026-11-23T10:00:00Z",
        "xgboost_version": "3.0.5",
        "python_version": "3.11.9",
        "container_image": IMAGE,
        "container_framework_version": "3.0-5",
        "label": "y",
        "features": ["age", "balance"],
        "dataset": {
            "name": "bank-marketing",
            "source": "bank.csv",
            "sha256": "0" * 64,
            "rows": 1000,
            "label": "y",
            "positive_label": "yes",
            "seed": 7,
            "splits": {"test": {"rows": 1000, "positives": 110, "sha256": "1" * 64}},
        },
        "metrics": metrics,
        "calibration": {"brier": 0.07, "expected_calibration_error": 0.02, "bins": []},
        "bias": [
            {
                "facet": "age_group",
                "groups": [],
                "demographic_parity_difference": 0.05,
                "demographic_parity_ratio": 0.9,
                "disparate_impact": 0.9,
                "difference_in_positive_proportions": 0.05,
                "label_disparate_impact": 0.9,
                "label_difference_in_positive_proportions": 0.05,
            }
        ],
        "baseline": {
            "rows": 1000,
            "features": {},
            "prediction": {
                "column": "score",
                "count": 1000,
                "missing": 0,
                "mean": 0.1,
                "std": 0.1,
                "min": 0.0,
                "max": 1.0,
                "quantiles": {},
                "bin_edges": [0.5],
                "bin_proportions": [0.9, 0.1],
            },
        },
        "hyperparameters": {"max_depth": 5},
        "training": {"method": "optuna", "trials": 10},
    }
    doc.update(overrides)
    return doc


def put_model_files(
    s3: Any,
    name: str = "xgb-best",
    version: str = "1",
    *,
    evaluation_doc: dict | None = None,
    deployment: dict | str | None = None,
    artifact: bytes | None = None,
) -> str:
    """Upload evaluation.json (+ deployment.json) and model.tar.gz; return the artifact key."""
    prefix = f"models/{name}/{version}/"
    if evaluation_doc is not False:
        s3.put_object(
            Bucket=BUCKET, Key=prefix + "evaluation.json", Body=json.dumps(evaluation_doc or evaluation())
        )
    if deployment is not None:
        body = deployment if isinstance(deployment, str) else json.dumps(deployment)
        s3.put_object(Bucket=BUCKET, Key=prefix + "deployment.json", Body=body)
    body = real_artifact() if artifact is None else artifact
    s3.put_object(Bucket=BUCKET, Key=prefix + "model.tar.gz", Body=body)
    return prefix + "model.tar.gz"


def real_artifact(model_bytes: bytes = b"{\"learner\": {}}" * 64) -> bytes:
    """A well-formed model.tar.gz (one regular member `xgboost-model`), deterministic bytes."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(model_bytes)
        tar.addfile(info, io.BytesIO(model_bytes))
    return gzip.compress(tar_buf.getvalue(), mtime=0)


def event_for(s3: Any, key: str, bucket: str = BUCKET) -> dict:
    """The Object Created event S3 would send for an existing object (real VersionId and ETag)."""
    head = s3.head_object(Bucket=bucket, Key=key)
    return s3_event(key, bucket=bucket, version_id=head.get("VersionId"), etag=head["ETag"].strip('"'))


class FakeContext:
    aws_request_id = "req-1"
    function_name = "guardrail-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:guardrail-test"
