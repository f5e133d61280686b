"""Drift and data-quality guardrails over an endpoint's captured traffic, and the S3 readers behind them.

`check_data` runs after a deployment's watch (the state machine) and on a schedule (EventBridge): it reads
the data capture of the variant that serves production over the last `DATA_CHECK_WINDOW_SECONDS`, compares
the inputs (and scores) with the training baseline in the model's evaluation.json (`functions.stats.drift`)
and checks them against the baseline's constraints (`functions.stats.data_quality`). A breach is published
on the outcome topic as `DRIFT` (with the top drifting features) or `DATA_QUALITY` (with examples); the
deployment itself is not touched. Too little traffic is NO_DATA, said as such.

The readers (`capture_records`, `ground_truth_records`) also feed the shadow analysis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters import s3, sagemaker, sns
from functions.capture import (
    CaptureRecord,
    GroundTruthRecord,
    capture_prefix,
    read_capture_lines,
    read_ground_truth_lines,
)
from functions.config import Settings
from functions.errors import ArtifactNotFound, InvalidArtifact, aws_errors
from functions.evaluation import ModelEvaluation
from functions.models import CheckDataInput, DataCheckState, NotificationPayload
from functions.stats.data_quality import DataQualityReport, DataQualityWindow
from functions.stats.drift import DriftPolicy, DriftReport, DriftWindow
from functions.steps.notify import HEADLINES, subject_for

# --------------------------------------------------------------------------------------------------------
# S3 readers: data capture and Model Monitor ground truth, hour folders within a window
# --------------------------------------------------------------------------------------------------------


def _hours(since: datetime, until: datetime) -> list[str]:
    """`yyyy/mm/dd/hh` folders that can hold records of [since, until] (SageMaker's capture layout)."""
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour <= until:
        out.append(f"{hour:%Y/%m/%d/%H}")
        hour += timedelta(hours=1)
    return out


def _keys(bucket: str, prefix: str, since: datetime, until: datetime) -> list[str]:
    keys: list[str] = []
    paginator = s3.client().get_paginator("list_objects_v2")
    for hour in _hours(since, until):
        with aws_errors("list_objects_v2"):
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{hour}/"):
                keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
    return sorted(keys)


def _lines(bucket: str, keys: Iterable[str]) -> Iterator[bytes]:
    for key in keys:
        with aws_errors("get_object"):
            body = s3.client().get_object(Bucket=bucket, Key=key)["Body"]
        yield from body.iter_lines()


def _inside(record: CaptureRecord, since: datetime, until: datetime) -> bool:
    if not record.inference_time:
        return True
    try:
        at = datetime.fromisoformat(record.inference_time.replace("Z", "+00:00"))
    except ValueError:
        return True
    return since <= at <= until


def capture_records(
    destination_uri: str,
    endpoint: str,
    variant: str,
    since: datetime,
    until: datetime,
    keep: Callable[[str], bool] | None = None,
) -> Iterator[CaptureRecord]:
    """One variant's captured requests in [since, until], once each (SageMaker may capture a production
    request twice during an inference experiment: for the endpoint config and for the experiment). `keep`
    samples by request id before the duplicate check, so memory grows with the kept records only."""
    bucket, prefix = capture_prefix(destination_uri, endpoint, variant)
    seen: set[str] = set()
    for record in read_capture_lines(_lines(bucket, _keys(bucket, prefix, since, until))):
        if (keep is not None and not keep(record.key)) or record.key in seen or not _inside(record, since, until):
            continue
        seen.add(record.key)
        yield record


def ground_truth_records(uri: str, endpoint: str, since: datetime, until: datetime) -> Iterator[GroundTruthRecord]:
    """Labels under `<uri>/<endpoint>/yyyy/mm/dd/hh/*.jsonl` (Model Monitor's ground-truth layout); labels may
    arrive after the requests, so the listing runs to now."""
    bucket, prefix = capture_prefix(uri, endpoint, "")
    return read_ground_truth_lines(_lines(bucket, _keys(bucket, prefix, since, max(until, datetime.now(UTC)))))


def read_evaluation(uri: str) -> ModelEvaluation:
    bucket, key = s3.split_uri(uri)
    raw = s3.read_json(bucket, key)
    try:
        return ModelEvaluation.model_validate(raw)
    except ValueError as exc:
        raise InvalidArtifact(f"{uri} is not a valid evaluation.json: {exc}") from exc


# --------------------------------------------------------------------------------------------------------
# Compact evidence for the execution document and the notification (Step Functions payloads <= 256 KB)
# --------------------------------------------------------------------------------------------------------


def drift_summary(report: DriftReport, limit: int = 8) -> dict[str, Any]:
    keep = ("feature", "kind", "rows", "psi", "status", "ks_statistic", "ks_p_value", "chi2_p_value", "largest_shift")
    features = [f.model_dump(mode="json", include=set(keep)) for f in report.features[:limit]]
    return {
        "rows": report.rows,
        "drifted": report.drifted,
        "top": report.top,
        "features": features,
        "prediction": report.prediction.model_dump(mode="json", include=set(keep)) if report.prediction else None,
        "explanation": report.explanation,
    }


def quality_summary(report: DataQualityReport) -> dict[str, Any]:
    return report.model_dump(mode="json")


def breach_fraction(report: DataQualityReport) -> float:
    return report.rows_with_breaches / report.rows if report.rows else 0.0


# --------------------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------------------


def _serving(endpoint: str) -> tuple[str, str, str | None] | None:
    """(variant, model, artifact URI) of the endpoint's first production variant; None without an endpoint."""
    described = sagemaker.describe_endpoint(endpoint)
    if described is None:
        return None
    config = sagemaker.describe_endpoint_config(described["EndpointConfigName"]) or {}
    variant = (config.get("ProductionVariants") or [{}])[0]
    model = variant.get("ModelName")
    if not model:
        return None
    container = (sagemaker.describe_model(model) or {}).get("PrimaryContainer") or {}
    return variant["VariantName"], model, container.get("ModelDataUrl")


def _evaluation_uri(artifact_uri: str | None) -> str | None:
    # Training writes evaluation.json beside model.tar.gz (docs/contracts.md).
    if not artifact_uri or not artifact_uri.startswith("s3://") or "/" not in artifact_uri[5:]:
        return None
    return artifact_uri.rsplit("/", 1)[0] + "/evaluation.json"


def _publish(
    outcome: str, state: DataCheckState, summary: str, details: dict[str, Any], settings: Settings, now: datetime,
    execution: str | None,
) -> str:
    model = state.model or "unknown"
    # Not the execution's outcome (that stays DEPLOYED): the execution that ran the check is a detail.
    payload = NotificationPayload(
        outcome=outcome, endpoint=state.endpoint_name, model=model, summary=summary,
        details=details | ({"checked_after_execution": execution} if execution else {}), timestamp=now.isoformat(),
    )
    body = "\n".join([
        f"Guardrail: {model} {HEADLINES.get(outcome, outcome.lower())}.", "", summary, "",
        f"Endpoint:  {state.endpoint_name}", f"Variant:   {state.variant or '-'}",
        f"Window:    {state.window_start} .. {state.window_end}", "", "JSON payload:",
        json.dumps(payload.model_dump(mode="json"), indent=2, sort_keys=True, default=str),
    ])
    return sns.publish(
        settings.topic_arn or "", subject_for(outcome, model, state.endpoint_name), body,
        {"outcome": outcome, "endpoint": state.endpoint_name, "model": model},
    )


def check_data(doc: CheckDataInput, settings: Settings, now: datetime | None = None) -> DataCheckState:
    """Drift + data quality of the serving variant's traffic over the last window; notify each breach."""
    settings.require("topic_arn")
    now = now or datetime.now(UTC)
    endpoint = doc.upload.endpoint_name if doc.upload else settings.endpoint_name
    since = now - timedelta(seconds=settings.data_check_window_seconds)
    base: dict[str, Any] = {"endpoint_name": endpoint, "window_start": since.isoformat(), "window_end": now.isoformat()}
    if not settings.data_capture_uri:
        return DataCheckState(status="SKIPPED", explanation="DATA_CAPTURE_URI is not set: nothing to check", **base)
    serving = _serving(endpoint)
    if serving is None:
        return DataCheckState(status="SKIPPED", explanation=f"{endpoint} has no serving model", **base)
    variant, model, artifact = serving
    base |= {"variant": variant, "model": model}
    eval_uri = _evaluation_uri(artifact)
    try:
        evaluation = read_evaluation(eval_uri) if eval_uri else None
    except ArtifactNotFound:
        evaluation = None
    if evaluation is None:
        return DataCheckState(
            status="SKIPPED", explanation=f"no evaluation.json beside {artifact or model}: no baseline", **base
        )
    drift = DriftWindow(evaluation, policy=DriftPolicy(psi_major=settings.drift_psi_major,
                                                       min_rows=settings.data_check_min_rows))
    quality = DataQualityWindow(evaluation)
    requests = 0
    for record in capture_records(settings.data_capture_uri, endpoint, variant, since, now):
        requests += 1
        drift.add_record(record)
        quality.add_record(record)
    drift_report, quality_report = drift.report(), quality.report()
    base |= {
        "requests": requests, "rows": quality_report.rows, "top_features": drift_report.top,
        "drift": drift_summary(drift_report), "data_quality": quality_summary(quality_report),
    }
    if quality_report.rows < settings.data_check_min_rows:
        return DataCheckState(
            status="NO_DATA",
            explanation=f"NO_DATA: {quality_report.rows} captured rows on {variant} in the last "
            f"{settings.data_check_window_seconds} s (< {settings.data_check_min_rows} needed)",
            **base,
        )
    flags: list[Any] = []
    notes = []
    if drift_report.drifted:
        flags.append("DRIFT")
        notes.append(drift_report.explanation)
    fraction = breach_fraction(quality_report)
    if fraction > settings.data_quality_max_breach_fraction:
        flags.append("DATA_QUALITY")
        notes.append(
            f"{100 * fraction:.1f}% of {quality_report.rows} rows breach the baseline's constraints "
            f"(> {100 * settings.data_quality_max_breach_fraction:.1f}%): {quality_report.explanation}"
        )
    state = DataCheckState(
        status="BREACH" if flags else "OK", flags=flags,
        explanation=" | ".join(notes) or f"OK: {drift_report.explanation} | {quality_report.explanation}", **base,
    )
    ids = []
    details: dict[str, Any]
    for flag in flags:
        if flag == "DRIFT":
            summary = (f"Inputs of {model} on {endpoint} drifted from the training baseline "
                       f"(top: {', '.join(drift_report.top) or '-'}). {drift_report.explanation}")
            details = {"drift": state.drift, "requests": requests}
        else:
            summary = (f"Traffic to {model} on {endpoint} breaks the training data's constraints. "
                       f"{notes[-1]}")
            details = {"data_quality": state.data_quality, "breach_fraction": round(fraction, 4),
                       "threshold": settings.data_quality_max_breach_fraction, "requests": requests}
        ids.append(_publish(flag, state, summary, details, settings, now, doc.execution))
    return state.model_copy(update={"notifications": ids})
