"""Launch the same tuning on SageMaker: a CreateHyperParameterTuningJob for the built-in XGBoost algorithm.

Built with the SageMaker Python SDK v3 (`HyperparameterTuner` over a `ModelTrainer` with the built-in XGBoost
image) over `training.search_space`, so local Optuna and SageMaker tune the same hyperparameters and ranges.
The SDK is the optional extra `sagemaker` and is imported lazily. `dry_run=True` returns the request the SDK
would send, validated by botocore against the service model, without sending it (no credentials needed).

    python -m training.sagemaker_tuning --role arn:aws:iam::123456789012:role/SageMakerRole \
        --train s3://bucket/data/train/ --validation s3://bucket/data/validation/ \
        --output s3://bucket/tuning/ [--max-jobs 30 --max-parallel 3] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import boto3

from training.search_space import EARLY_STOPPING_ROUNDS, SEARCH_SPACE, STATIC_HYPERPARAMETERS, TUNING_METRIC
from training.versions import CONTAINER_FRAMEWORK_VERSION

OPERATION = "CreateHyperParameterTuningJob"


@dataclass(frozen=True)
class TuningJobSpec:
    role_arn: str
    train_s3: str
    validation_s3: str
    output_s3: str
    max_jobs: int = 30
    max_parallel_jobs: int = 3
    instance_type: str = "ml.m5.xlarge"
    job_name: str | None = None
    seed: int = 42
    region: str = "us-east-1"


class _Captured(Exception):
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(OPERATION)
        self.params = params


def _ranges() -> dict[str, Any]:
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter

    out: dict[str, Any] = {}
    for p in SEARCH_SPACE:
        scaling = "Logarithmic" if p.log else "Linear"
        cls = IntegerParameter if p.kind == "int" else ContinuousParameter
        low, high = (int(p.low), int(p.high)) if p.kind == "int" else (p.low, p.high)
        out[p.name] = cls(low, high, scaling_type=scaling)
    return out


def build_tuner(spec: TuningJobSpec, boto_session: boto3.Session) -> Any:
    """The SDK objects: a ModelTrainer for the built-in XGBoost image and a HyperparameterTuner over it."""
    from sagemaker.core import image_uris
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, OutputDataConfig, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer
    from sagemaker.train.tuner import HyperparameterTuner

    session = Session(boto_session=boto_session)
    image = image_uris.retrieve("xgboost", spec.region, CONTAINER_FRAMEWORK_VERSION)
    trainer = ModelTrainer(
        training_image=image,
        role=spec.role_arn,
        sagemaker_session=session,
        base_job_name="guardrail-xgb",
        compute=Compute(instance_type=spec.instance_type, instance_count=1, volume_size_in_gb=30),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=3600),
        output_data_config=OutputDataConfig(s3_output_path=spec.output_s3),
        hyperparameters={**STATIC_HYPERPARAMETERS, "early_stopping_rounds": EARLY_STOPPING_ROUNDS,
                         "seed": spec.seed},
    )
    return HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=TUNING_METRIC,
        objective_type="Maximize",
        hyperparameter_ranges=_ranges(),
        strategy="Bayesian",
        max_jobs=spec.max_jobs,
        max_parallel_jobs=spec.max_parallel_jobs,
        early_stopping_type="Auto",
        base_tuning_job_name="guardrail-xgb",
        random_seed=spec.seed,
    )


def launch(spec: TuningJobSpec, *, boto_session: boto3.Session | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Start the tuning job (or, with dry_run, only build and validate it); returns the request's parameters."""
    from sagemaker.core.training.configs import InputData

    boto_session = boto_session or boto3.Session(region_name=spec.region)
    captured: dict[str, Any] = {}

    def capture(params: dict[str, Any], **_: Any) -> None:
        captured.update(params)

    def stop_before_sending(**_: Any) -> None:  # runs after botocore's parameter validation
        raise _Captured(captured)

    # Registered on the session before the SDK creates its client, so that client inherits the handlers.
    events = boto_session.events
    events.register(f"provide-client-params.sagemaker.{OPERATION}", capture)
    if dry_run:
        events.register(f"before-call.sagemaker.{OPERATION}", stop_before_sending)
    # The SDK checks the role with IAM (a network call); a dry run skips that, as the SDK's own switch allows.
    saved = os.environ.get("SAGEMAKER_VALIDATE_ROLE")
    if dry_run:
        os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    try:
        tuner = build_tuner(spec, boto_session)
    finally:
        if dry_run:
            os.environ.pop("SAGEMAKER_VALIDATE_ROLE") if saved is None else os.environ.update(
                SAGEMAKER_VALIDATE_ROLE=saved)
    inputs = [InputData(channel_name="train", data_source=spec.train_s3, content_type="text/csv"),
              InputData(channel_name="validation", data_source=spec.validation_s3, content_type="text/csv")]
    try:
        tuner.tune(inputs=inputs, job_name=spec.job_name, wait=False)
    except _Captured as done:
        return done.params
    return captured


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.sagemaker_tuning", description=__doc__.split("\n\n")[0])
    p.add_argument("--role", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--validation", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--max-jobs", type=int, default=30)
    p.add_argument("--max-parallel", type=int, default=3)
    p.add_argument("--instance-type", default="ml.m5.xlarge")
    p.add_argument("--job-name")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--dry-run", action="store_true", help="print the validated request, do not send it")
    a = p.parse_args(argv)
    spec = TuningJobSpec(role_arn=a.role, train_s3=a.train, validation_s3=a.validation, output_s3=a.output,
                         max_jobs=a.max_jobs, max_parallel_jobs=a.max_parallel, instance_type=a.instance_type,
                         job_name=a.job_name, seed=a.seed, region=a.region)
    print(json.dumps(launch(spec, dry_run=a.dry_run), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
