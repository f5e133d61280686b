"""Scenarios of the statistical guardrails on a deployed Guardrail (local cloud or AWS): an upload with
live traffic whose labels arrive as Model Monitor ground truth, and the scheduled drift / data-quality check.

    run = run_upload(target, models_dir, data, model="worse", version="v4", deployment=SHADOW, rps=40)
    run.outcome  # SHADOW_REJECTED: the paired AUC test on ground truth caught it

Traffic goes through `guardrail.traffic.TrafficReplayer` with inference ids (the join key of data capture and
ground truth), shuffled held-out rows, and optional perturbations (drift, malformed, out-of-range rows).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from guardrail.demo import TERMINAL, Target, execution_path, final_document, find_execution
from guardrail.traffic import HeldOut, RequestRecord, TrafficConfig, TrafficReplayer, write_ground_truth

MODEL_NAME = "bank-marketing-evidence"


class EvidenceRun(BaseModel):
    key: str
    execution_arn: str
    outcome: str | None
    path: list[str]
    document: dict[str, Any]
    alert_outcome: str | None = None
    alert_summary: str | None = None
    requests: int = 0
    labels_written: int = 0
    seconds: float


class GroundTruthFeed:
    """Collects answered requests and writes their labels to S3 every `interval` seconds, as a labelling
    process would: the analysis sees labels arrive while the test runs."""

    def __init__(self, s3: Any, uri: str, endpoint: str, interval: float = 1.0) -> None:
        self.s3, self.uri, self.endpoint, self.interval = s3, uri, endpoint, interval
        self.written = 0
        self._pending: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ground-truth", daemon=True)

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._pending.append(record)

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if write_ground_truth(batch, self.uri, self.endpoint, s3=self.s3):
            self.written += sum(1 for r in batch if r.inference_id and r.label and r.status == "ok")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def __enter__(self) -> GroundTruthFeed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()


def _runtime_client(target: Target, workers: int) -> Any:
    if target.env is None:
        return None
    from local.env import client

    return client("sagemaker-runtime", target.env, retries={"total_max_attempts": 1},
                  max_pool_connections=workers + 2, read_timeout=10)


def traffic(target: Target, data: HeldOut, rps: float, *, duration: float = 3600, seed: int = 0,
            on_record: Any = None, **perturb: Any) -> TrafficReplayer:
    """A background replay with inference ids and shuffled rows (held-out files are ordered in time)."""
    config = TrafficConfig(endpoint_name=target.endpoint_name, rate=rps, duration=duration, inference_ids=True,
                           shuffle=True, seed=seed, read_timeout=10, **perturb)
    return TrafficReplayer(config, data, client=_runtime_client(target, config.workers), on_record=on_record)


def stage(target: Target, models_dir: Path, model: str, version: str, deployment: dict[str, Any] | None) -> str:
    """Upload evaluation.json, deployment.json and (last: the trigger) model.tar.gz; returns the key."""
    s3, folder = target.client("s3"), models_dir / model
    prefix = f"{target.model_prefix}{MODEL_NAME}/{version}/"
    s3.put_object(Bucket=target.bucket, Key=prefix + "evaluation.json", Body=(folder / "evaluation.json").read_bytes())
    if deployment is not None:
        s3.put_object(Bucket=target.bucket, Key=prefix + "deployment.json", Body=json.dumps(deployment).encode())
    s3.put_object(Bucket=target.bucket, Key=prefix + "model.tar.gz", Body=(folder / "model.tar.gz").read_bytes())
    return prefix + "model.tar.gz"


def run_upload(
    target: Target, models_dir: Path, data: HeldOut, *, model: str, version: str,
    deployment: dict[str, Any] | None = None, rps: float = 0.0, ground_truth: bool = True,
    alerts: Any = None, timeout: float = 150.0, seed: int = 0,
) -> EvidenceRun:
    """Stage an upload, send labelled traffic while its execution runs, and return what happened."""
    sfn, s3 = target.client("stepfunctions"), target.client("s3")
    started, since = time.monotonic(), datetime.now(UTC)
    key = stage(target, models_dir, model, version, deployment)
    feed = GroundTruthFeed(s3, f"s3://{target.bucket}/ground-truth", target.endpoint_name)
    replay = traffic(target, data, rps, seed=seed, on_record=feed.add if ground_truth else None) if rps else None
    with feed, replay if replay is not None else contextlib.nullcontext():
        arn = find_execution(sfn, target.state_machine_arn, key, since, timeout=30)
        deadline = time.monotonic() + timeout
        while sfn.describe_execution(executionArn=arn)["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                sfn.stop_execution(executionArn=arn, error="Timeout", cause="evidence scenario took too long")
                break
            time.sleep(0.5)
    _, doc = final_document(sfn, arn)
    run = EvidenceRun(
        key=key, execution_arn=arn, outcome=doc.get("outcome"), path=execution_path(sfn, arn), document=doc,
        requests=len(replay.records) if replay else 0, labels_written=feed.written,
        seconds=time.monotonic() - started,
    )
    if alerts is not None:
        name = arn.rsplit(":", 1)[-1]
        with contextlib.suppress(TimeoutError):
            alert = alerts.wait_for(lambda a: (a.payload or {}).get("execution") == name, timeout=15)
            run.alert_outcome, run.alert_summary = alert.outcome, (alert.payload or {}).get("summary")
    return run


def function_name(target: Target, logical_id: str = "CheckDataFunction") -> str:
    """The deployed name of a template function (CloudFormation names it `<stack>-<LogicalId>-<suffix>`)."""
    lam = target.client("lambda")
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            if logical_id in fn["FunctionName"]:
                return fn["FunctionName"]
    raise LookupError(f"no deployed function for {logical_id}")


def scheduled_event(account: str = "123456789012", region: str = "us-east-1") -> dict[str, Any]:
    """What the EventBridge schedule sends the data-check function."""
    return {
        "version": "0", "id": "guardrail-data-check", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": account, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/guardrail-data-check"], "detail": {},
    }


def check_data_now(target: Target) -> dict[str, Any]:
    """Invoke the data-check function as its schedule does; returns its result (functions.models.DataCheckState)."""
    response = target.client("lambda").invoke(
        FunctionName=function_name(target), Payload=json.dumps(scheduled_event()).encode()
    )
    payload = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        raise RuntimeError(f"data check failed: {payload}")
    return payload


def replay_for(target: Target, data: HeldOut, rps: float, seconds: float, seed: int = 0, **perturb: Any) -> list[RequestRecord]:
    """Send `seconds` of (perturbed) traffic now and wait for the capture to reach S3."""
    replay = traffic(target, data, rps, duration=seconds, seed=seed, **perturb)
    result = replay.run()
    time.sleep(2.5)  # the emulator flushes data capture about once a second
    return result.records
