"""Helpers shared by the emulator tests (a unique module name, so other areas' helpers never shadow it)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

BUCKET = "models"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
N_FEATURES = 6
# SageMaker publishes invocation metrics every 60 s unless enhanced metrics ask for another frequency
# (API_MetricsConfig); tests that read metrics ask for 10 s so they need not wait a minute.
FAST_METRICS = {"EnableEnhancedMetrics": True, "MetricPublishFrequencyInSeconds": 10}


def model_url(name: str) -> str:
    return f"s3://{BUCKET}/models/{name}/model.tar.gz"


def create_model(sm: Any, name: str, artifact: str) -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_url(artifact)})


def create_config(sm: Any, name: str, model: str, variant: str = "AllTraffic", count: int = 3,
                  **extra: Any) -> None:
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": variant, "ModelName": model, "InstanceType": "ml.m5.xlarge",
        "InitialInstanceCount": count, "InitialVariantWeight": 1.0}], **{"MetricsConfig": FAST_METRICS, **extra})


def wait_status(sm: Any, endpoint: str, statuses: tuple[str, ...] = ("InService", "Failed"),
                timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc = sm.describe_endpoint(EndpointName=endpoint)
        if desc["EndpointStatus"] in statuses or time.monotonic() > deadline:
            return desc
        time.sleep(0.1)


def row(seed: int = 0) -> str:
    values = np.random.default_rng(seed).normal(size=N_FEATURES)
    return ",".join(f"{v:.6f}" for v in values)


def metric_stats(cw: Any, metric: str, endpoint: str, variant: str, config: str) -> dict[str, float]:
    """Sum, SampleCount, Minimum, Maximum, Average over the last minutes for one fleet. Queried with all three
    dimensions: moto matches a query's dimensions as a subset (CloudWatch matches them exactly), so a
    two-dimension query would also count the three-dimension copies."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    points = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName=metric, StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Sum", "SampleCount", "Minimum", "Maximum"],
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant},
                    {"Name": "EndpointConfigName", "Value": config}])["Datapoints"]
    total, count = sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points)
    return {"Sum": total, "SampleCount": count, "Average": total / count if count else 0.0,
            "Minimum": min((p["Minimum"] for p in points), default=0.0),
            "Maximum": max((p["Maximum"] for p in points), default=0.0)}


def eventually(check: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Retry `check` (which asserts) until it passes: metrics and capture are flushed in the background."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


def served_by(boosters: dict[str, Any], payload: str, score: float, candidates: tuple[str, ...] = ("v1", "v2")) -> str:
    """Which model answered: the candidate whose xgboost prediction for `payload` is nearest `score`. Blue and
    green fleets share their variant name (AWS requires it for guarded updates), so the answer tells them apart."""
    x = np.array([[float(v) for v in payload.split(",")]], dtype=np.float32)
    return min(candidates, key=lambda k: abs(float(boosters[k].inplace_predict(x)[0]) - score))
