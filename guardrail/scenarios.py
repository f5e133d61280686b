"""The scenario table (README.md "Demo"): what each scenario uploads, how it is triggered, what must happen.

The whole table runs in this order against one endpoint (each starts from where the previous one left it):
the first deployment creates the endpoint, the update replaces it, the rollback scenarios must leave the
update's model serving, the shadow promote replaces it again, and the rest must not touch it. A subset
(`guardrail demo --only ...`) is checked against what ran before it: a scenario that does not change the
endpoint must leave the model that served before it serving, and one that `needs_endpoint` (an update, a
rollback, a shadow test) gets `first-deployment` run before it when there is no endpoint yet.
Staging and triggering go through boto3 only, so they work on the local cloud and on AWS alike.
"""

from __future__ import annotations

import functools
import io
import json
import tarfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_NAME = "bank-marketing"  # models/<name>/<version>/model.tar.gz
ARTIFACT_FILES = ("evaluation.json", "deployment.json", "model.tar.gz")  # upload order: the tarball triggers


class ScenarioError(RuntimeError):
    """A scenario cannot be staged or triggered (missing artifacts, unknown name...)."""


class Scenario(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # events/<key>.json
    row: str  # the row of the design's scenario table (README.md "Demo")
    title: str
    model: str | None  # artifacts/models/<model>/ staged beside the upload (None: nothing to stage)
    version: str
    deployment: dict[str, Any] | None = None  # deployment.json written beside the artifact
    staging: Literal["complete", "no-evaluation", "corrupt-artifact", "truncated-model", "feature-mismatch"] = "complete"
    trigger: Literal["upload", "execution"] = "upload"  # execution: a malformed input straight to StartExecution
    expected: str  # outcome (functions.models.Outcome)
    expected_error: str | None = None  # Step Functions error name behind a FAILED
    alarm: Literal["error", "latency", "client_error"] | None = None  # the guardrail alarm that must fire
    expected_reason: str | None = None  # words the SNS alert's summary must contain (why it ended so)
    # version whose model serves afterwards when the whole table ran in order (None: no endpoint needed); checked
    # as such for a scenario that changes the endpoint, else the model that served before must still serve
    serves_after: str | None = None
    endpoint_changes: bool = False  # whether the endpoint's config may change
    needs_endpoint: bool = False  # an endpoint must be in service first (an update, a rollback, a shadow test)
    traffic_rps: float = Field(default=0.0, ge=0)  # requests per second sent while the execution runs
    timeout_seconds: float = 90.0

    @property
    def prefix(self) -> str:
        return f"{MODEL_NAME}/{self.version}/"

    def key_in(self, model_prefix: str = "models/") -> str:
        return f"{model_prefix}{self.prefix}model.tar.gz"

    @property
    def model_name(self) -> str:
        return model_name(self.version)


def model_name(version: str) -> str:
    """The SageMaker model of a version (functions.steps.names.resource_names). Versions are told apart by model
    and endpoint config; the production variant keeps one name for the endpoint's life (blue/green rule)."""
    from functions.steps.names import sagemaker_name

    return sagemaker_name(f"{MODEL_NAME}-{version}")


CANARY = {"strategy": "CANARY", "canary_percent": 25}
# The incompatible model must reach the endpoint to show AWS's alarm-driven rollback: pre-flight would reject it.
CANARY_NO_PREFLIGHT = {**CANARY, "preflight": False}
LINEAR = {"strategy": "LINEAR", "linear_step_percent": 50}
# An update that nobody calls: the evidence check (functions/steps/evidence.py, policy rollback by default) rolls
# it back after the bakes and the watch; ~85 s were measured (docs/benchmarks.md "Blast radius"), so 180 s.
NO_TRAFFIC_TIMEOUT = 180.0
SHADOW = {"strategy": "ALL_AT_ONCE", "shadow": {"enabled": True, "sampling_percent": 100}}
# Rolling (issue 15 §3): batches of 2 of the 4 local instances; the rollback brings the old fleet back one
# instance at a time (RollbackMaximumBatchSize 25 %), not AWS's default of all at once.
ROLLING = {"strategy": "ROLLING", "rolling_batch_percent": 50}
ROLLING_BATCHED_ROLLBACK = {**ROLLING, "rollback_batch_percent": 25}
ROLLING_TIMEOUT = 180.0  # two 20-s bakes, a launch per batch, the 20-s watch; ~100 s measured
# Shadow scenarios send 40 req/s: the sequential verdict needs ~100+ paired requests per arm and, for the mean
# latency, ~10 metric periods (samconfig [local] ShadowDurationSeconds=120); a promotion waits for the end of the
# test (one paired look at the ground truth): ~20 s of steps before, 120 s of test, ~20 s to conclude; 160 s was
# measured on a loaded 2-core machine, so 240 s.
SHADOW_TIMEOUT = 240.0

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="first-deployment", row="first deployment", title="First deployment: tuned XGBoost #1",
        model="xgb-best", version="v1", deployment={"strategy": "ALL_AT_ONCE"},
        expected="DEPLOYED", serves_after="v1", endpoint_changes=True, traffic_rps=0,
    ),
    Scenario(
        key="successful-update", row="successful update", title="Canary update to tuned XGBoost #2",
        model="xgb-runnerup", version="v2", deployment=CANARY,
        expected="DEPLOYED", serves_after="v2", endpoint_changes=True, needs_endpoint=True, traffic_rps=20,
    ),
    Scenario(
        key="incompatible-model", row="incompatible model", title="Incompatible artifact: 5XX alarm, rollback",
        model="incompatible", version="v3", deployment=CANARY_NO_PREFLIGHT,
        expected="ROLLED_BACK", alarm="error", serves_after="v2", needs_endpoint=True, traffic_rps=20,
    ),
    Scenario(
        # The runner-up's evaluation.json with its xgboost-model cut in half: the container could not load it
        # (500 on every request to the new fleet); pre-flight loads it as the container would and rejects it
        # before any endpoint change, so not one request fails.
        key="preflight-catches-bad-artifact", row="incompatible model",
        title="Pre-flight: a truncated model file is rejected before the endpoint changes",
        model="xgb-runnerup", version="v12", staging="truncated-model", deployment=CANARY,
        expected="REJECTED", serves_after="v2", traffic_rps=20,
    ),
    Scenario(
        # A booster trained on one column fewer than production's rows (staged as feature-mismatch: built from
        # train.csv, beside the runner-up's evaluation.json): the container answers 400 to every request, which
        # no 5XX alarm sees; pre-flight is off so that the relative 4XX-rate alarm must catch it on the canary.
        key="feature-mismatch-4xx", row="incompatible model",
        title="Model trained on one column fewer: 4XX-rate alarm, rollback",
        model="xgb-runnerup", version="v13", staging="feature-mismatch", deployment=CANARY_NO_PREFLIGHT,
        expected="ROLLED_BACK", alarm="client_error", serves_after="v2", needs_endpoint=True, traffic_rps=20,
    ),
    Scenario(
        key="slow-model", row="slow model", title="Slow model: latency alarm, rollback",
        model="slow", version="v4", deployment=LINEAR,
        expected="ROLLED_BACK", alarm="latency", serves_after="v2", needs_endpoint=True, traffic_rps=20,
    ),
    Scenario(
        # A good model, but nobody calls the endpoint while it rolls out: no evidence, no promotion.
        key="no-traffic-update", row="successful update", title="Update with no traffic: no evidence, rolled back",
        model="xgb-runnerup", version="v14", deployment=CANARY,
        expected="ROLLED_BACK", expected_reason="no evidence", serves_after="v2", needs_endpoint=True,
        traffic_rps=0, timeout_seconds=NO_TRAFFIC_TIMEOUT,
    ),
    Scenario(
        # AWS's rolling sample, with the slow model: the first batch bakes beside the old instances, the latency
        # alarm trips, and the new instances go one at a time while the old fleet serves on.
        key="rolling-rollback", row="slow model", title="Rolling update of a slow model: latency alarm, rollback in batches",
        model="slow", version="v21", deployment=ROLLING_BATCHED_ROLLBACK,
        expected="ROLLED_BACK", alarm="latency", serves_after="v2", needs_endpoint=True, traffic_rps=20,
        timeout_seconds=ROLLING_TIMEOUT,
    ),
    Scenario(
        key="rolling-update", row="successful update", title="Rolling update to tuned XGBoost #2: batches of 2 instances",
        model="xgb-runnerup", version="v22", deployment=ROLLING,
        expected="DEPLOYED", serves_after="v22", endpoint_changes=True, needs_endpoint=True, traffic_rps=20,
        timeout_seconds=ROLLING_TIMEOUT,
    ),
    Scenario(
        key="shadow-promote", row="shadow promote", title="Shadow test of a better model: promoted",
        model="xgb-best", version="v5", deployment=SHADOW,
        expected="PROMOTED", serves_after="v5", endpoint_changes=True, needs_endpoint=True, traffic_rps=40,
        timeout_seconds=SHADOW_TIMEOUT,
    ),
    Scenario(
        # The slow model: it passes the quality gate (its AUC is within the allowed drop from production's,
        # which an erroring or clearly worse model's is not), then fails the shadow test on latency.
        key="shadow-reject", row="shadow reject", title="Shadow test of a slow model: removed",
        model="slow", version="v6", deployment=SHADOW,
        expected="SHADOW_REJECTED", serves_after="v5", needs_endpoint=True, traffic_rps=40,
        timeout_seconds=SHADOW_TIMEOUT,
    ),
    Scenario(
        key="quality-gate-below-threshold", row="quality gate", title="Quality gate: AUC below threshold",
        model="below-threshold", version="v7", expected="REJECTED", serves_after="v5",
    ),
    Scenario(
        key="quality-gate-biased", row="quality gate", title="Quality gate: biased model",
        model="biased", version="v8", expected="REJECTED", serves_after="v5",
    ),
    Scenario(
        key="bad-input-malformed-event", row="bad input", title="Malformed trigger event",
        model=None, version="v9", trigger="execution", expected="FAILED", expected_error="InvalidTrigger",
        serves_after="v5",
    ),
    Scenario(
        key="bad-input-missing-artifact", row="bad input", title="Upload without evaluation.json",
        model="xgb-best", version="v10", staging="no-evaluation", expected="FAILED",
        expected_error="ArtifactNotFound", serves_after="v5",
    ),
    Scenario(
        key="bad-input-corrupt-artifact", row="bad input", title="Corrupt model.tar.gz",
        model="xgb-best", version="v11", staging="corrupt-artifact", expected="FAILED",
        expected_error="InvalidArtifact", serves_after="v5",
    ),
)

BY_KEY = {s.key: s for s in SCENARIOS}


def get(key: str) -> Scenario:
    """The scenario for `events/<key>.json` (the file's stem)."""
    try:
        return BY_KEY[Path(key).stem]
    except KeyError:
        raise ScenarioError(f"unknown scenario {key!r}; known: {', '.join(BY_KEY)}") from None


def artifact_files(scenario: Scenario, models_dir: Path) -> dict[str, bytes]:
    """The files to upload beside the artifact, in upload order (model.tar.gz last: it is the trigger)."""
    if scenario.model is None:
        return {}
    folder = models_dir / scenario.model
    missing = [name for name in ("evaluation.json", "model.tar.gz") if not (folder / name).is_file()]
    if missing:
        raise ScenarioError(
            f"{folder} lacks {', '.join(missing)}: train first (`guardrail train --out {models_dir} --scenarios`)"
        )
    files: dict[str, bytes] = {}
    if scenario.staging != "no-evaluation":
        files["evaluation.json"] = (folder / "evaluation.json").read_bytes()
    if scenario.deployment is not None:
        files["deployment.json"] = json.dumps(scenario.deployment).encode()
    elif (folder / "deployment.json").is_file():
        files["deployment.json"] = (folder / "deployment.json").read_bytes()
    files["model.tar.gz"] = (folder / "model.tar.gz").read_bytes()
    if scenario.staging == "corrupt-artifact":
        files["model.tar.gz"] = files["model.tar.gz"][64:128]  # a cut piece of it: not even gzip
    if scenario.staging == "truncated-model":
        files["model.tar.gz"] = truncate_model_file(files["model.tar.gz"])
    if scenario.staging == "feature-mismatch":
        files["model.tar.gz"] = one_column_fewer(_train_csv(models_dir))
    return files


def _train_csv(models_dir: Path) -> Path:
    """The training rows training wrote beside the held-out ones (`<out>/../data/bank-marketing/`)."""
    from guardrail.demo import holdout_path

    path = holdout_path(models_dir).with_name("train.csv")
    if not path.is_file():
        raise ScenarioError(f"{path} missing: train first (`guardrail train --out {models_dir} --scenarios`)")
    return path


@functools.lru_cache(maxsize=2)
def one_column_fewer(train_csv: Path) -> bytes:
    """A valid XGBoost model.tar.gz trained on all but the last feature column of `train_csv` (label first), as
    bench/blast_radius.py builds it: a candidate whose schema differs from production's by one column. Seeded and
    single-threaded, so the same rows give the same bytes; ~1 s for the bank data's 25k rows."""
    import numpy as np
    import xgboost as xgb

    from training.package import booster_bytes, tarball

    with train_csv.open() as f:
        first = f.readline().split(",")[0]
    try:
        float(first)
        header = 0
    except ValueError:
        header = 1
    rows = np.loadtxt(train_csv, delimiter=",", skiprows=header, ndmin=2)
    y, X = rows[:, 0], rows[:, 1:-1]
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "nthread": 1, "seed": 42},
                        xgb.DMatrix(X, label=y), num_boost_round=30)
    return tarball({"xgboost-model": booster_bytes(booster)})


def truncate_model_file(archive: bytes) -> bytes:
    """A whole, safe tar.gz whose model file is cut in half (parse_upload accepts it; the container cannot load
    it): what an interrupted copy into the packaging folder leaves behind."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as src, \
            tarfile.open(fileobj=out, mode="w:gz") as dst:
        members = [m for m in src.getmembers() if m.isfile()]
        if not members:
            raise ScenarioError("the model archive holds no file to truncate")
        for member in members:
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            data = data[: len(data) // 2]
            info = tarfile.TarInfo(member.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


def stage(
    s3: Any, bucket: str, scenario: Scenario, models_dir: Path, model_prefix: str = "models/",
    include_trigger: bool = True,
) -> dict[str, Any]:
    """Upload the scenario's files; returns the trigger object's head (key, etag, version id, size).

    With include_trigger=False the tarball is left out (replay then puts the saved event on the bus).
    """
    files = artifact_files(scenario, models_dir)
    prefix = f"{model_prefix}{scenario.prefix}"
    for name, body in files.items():
        if name == "model.tar.gz" and not include_trigger:
            continue
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body)
    key = scenario.key_in(model_prefix)
    if not include_trigger:
        return {"key": key, "size": len(files.get("model.tar.gz", b""))}
    head = s3.head_object(Bucket=bucket, Key=key)
    return {
        "key": key, "etag": head["ETag"].strip('"'), "version-id": head.get("VersionId"),
        "size": head["ContentLength"],
    }


def object_created_event(bucket: str, obj: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """An EventBridge "Object Created" event as S3 sends it (the execution document's root)."""
    detail_obj = {k: v for k, v in obj.items() if v is not None}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0", "bucket": {"name": bucket}, "object": detail_obj,
            "request-id": uuid.uuid4().hex[:16].upper(), "requester": "123456789012", "reason": "PutObject",
        },
    }


def malformed_event(bucket: str) -> dict[str, Any]:
    """An S3 event whose key is not a model upload (outside models/<name>/<version>/model.tar.gz)."""
    return object_created_event(bucket, {"key": "uploads/Not A Model!.tar.gz", "size": 3, "etag": "0"})


def saved_event(events_dir: Path, scenario: Scenario) -> dict[str, Any] | None:
    """The saved trigger event `events/<key>.json`, when the SAM app ships one."""
    path = events_dir / f"{scenario.key}.json"
    return json.loads(path.read_text()) if path.is_file() else None
