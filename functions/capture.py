"""Streaming parser for SageMaker data capture and Model Monitor ground-truth JSON Lines.

Data capture (one line per request, files `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`)::

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "41,1,0,...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT",
                                        "data": "0.0731", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<caller's id>", "inferenceTime": "..."},
     "eventVersion": "0"}

Ground truth (merged by Model Monitor on `eventId` = the capture's inferenceId, else its eventId)::

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"}, "eventVersion": "0"}

A corrupt line (not JSON, required keys missing) raises `CaptureFormatError` with its line number: that is a
broken file. A request whose payload cannot be parsed is traffic, so it is kept with `input_error` /
`output_error` set for the data-quality checks to count.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict


class CaptureFormatError(ValueError):
    """A capture or ground-truth line that is not a valid record."""


class CaptureRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    inference_id: str | None = None
    inference_time: str | None = None
    rows: list[list[str]] | None = None  # CSV input rows (raw fields), None when not captured/unparsable
    scores: list[float] | None = None  # one score per input row
    input_error: str | None = None
    output_error: str | None = None

    @property
    def key(self) -> str:
        """The join key with ground truth and with the other variant's capture."""
        return self.inference_id or self.event_id


def sampled(key: str, fraction: float) -> bool:
    """Deterministic sampling by request id: production and shadow keep the same requests (pairs survive)."""
    if fraction >= 1:
        return True
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2**64


@dataclass
class ReadBudget:
    """Bounds one variant's capture read (audit row 8): a sampling fraction chosen from the expected traffic,
    at most `max_records` kept, and a monotonic-clock deadline. `truncated` says why reading stopped early."""

    max_records: int
    deadline: float  # time.monotonic() value
    fraction: float = 1.0
    read: int = 0
    kept: int = 0
    truncated: str | None = None  # "records" | "time"

    @classmethod
    def for_traffic(cls, expected_records: int, max_records: int, seconds: float) -> ReadBudget:
        fraction = 1.0 if expected_records <= max_records else max_records / expected_records
        return cls(max_records=max_records, deadline=time.monotonic() + seconds, fraction=fraction)

    def keep(self, key: str) -> bool:
        return sampled(key, self.fraction)


def bounded(records: Iterable[CaptureRecord], budget: ReadBudget) -> Iterator[CaptureRecord]:
    """The sampled records of a stream until the cap or the deadline (checked every 256 records)."""
    for record in records:
        budget.read += 1
        if budget.read % 256 == 0 and time.monotonic() > budget.deadline:
            budget.truncated = "time"
            return
        if not budget.keep(record.key):
            continue
        if budget.kept >= budget.max_records:
            budget.truncated = "records"
            return
        budget.kept += 1
        yield record


class GroundTruthRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    labels: list[int]  # 0/1, one per input row


def _text(payload: dict[str, Any]) -> tuple[str, str]:
    """(content type, decoded text) of an endpointInput/endpointOutput/groundTruthData block."""
    content_type = str(payload.get("observedContentType", "")).split(";")[0].strip().lower()
    data = payload.get("data")
    if not isinstance(data, str):
        raise ValueError("no data")
    encoding = str(payload.get("encoding", "CSV")).upper()
    if encoding == "BASE64":
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"invalid base64: {exc}") from None
        if content_type not in ("", "text/csv", "application/json", "text/plain", "application/jsonlines"):
            raise ValueError(f"unsupported content type {content_type!r} (capture CSV or JSON)")
        try:
            return content_type, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("base64 payload is not UTF-8 text") from None
    if encoding == "JSON":
        return "application/json", data
    if encoding == "CSV":
        return content_type or "text/csv", data
    raise ValueError(f"unknown encoding {encoding!r}")


def parse_csv_rows(text: str) -> list[list[str]]:
    rows = [[f.strip() for f in row] for row in csv.reader(text.splitlines()) if row]
    if not rows:
        raise ValueError("empty payload")
    return rows


def _json_rows(obj: Any) -> list[list[str]]:
    # {"instances": [[...], ...]} or {"instances": [{"features": [...]}]} or a bare list of rows
    if isinstance(obj, dict):
        obj = obj.get("instances", obj.get("features"))
    if isinstance(obj, list) and obj and all(isinstance(x, int | float) for x in obj):
        obj = [obj]
    if not isinstance(obj, list) or not obj:
        raise ValueError("JSON input without rows")
    rows = []
    for row in obj:
        row = row.get("features") if isinstance(row, dict) else row
        if not isinstance(row, list):
            raise ValueError("JSON input row is not a list")
        rows.append(["" if v is None else str(v) for v in row])
    return rows


def parse_scores(text: str, content_type: str = "text/csv") -> list[float]:
    """Scores from an xgboost container response: CSV/newline separated, or JSON (list, predictions)."""
    if content_type.endswith("json") or text.lstrip().startswith(("[", "{")):
        obj = json.loads(text)
        if isinstance(obj, dict):
            obj = obj.get("predictions", obj.get("scores", obj))
        values = obj if isinstance(obj, list) else [obj]
        values = [v.get("score") if isinstance(v, dict) else v for v in values]
        scores = [float(v) for v in values]  # type: ignore[arg-type]
    else:
        scores = [float(x) for x in text.replace("\n", ",").split(",") if x.strip()]
    if not scores:
        raise ValueError("empty prediction")
    return scores


def _lines(lines: Iterable[str | bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            line = line.decode("utf-8")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CaptureFormatError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise CaptureFormatError(f"line {number}: not a JSON object")
        yield number, obj


def read_capture_lines(lines: Iterable[str | bytes]) -> Iterator[CaptureRecord]:
    """Parse data-capture JSON Lines one at a time (constant memory: pass a file or S3 body's lines)."""
    for number, obj in _lines(lines):
        meta = obj.get("eventMetadata")
        capture = obj.get("captureData")
        if not isinstance(meta, dict) or not isinstance(capture, dict) or not meta.get("eventId"):
            raise CaptureFormatError(f"line {number}: missing captureData or eventMetadata.eventId")
        rows = scores = input_error = output_error = None
        if isinstance(capture.get("endpointInput"), dict):
            try:
                ctype, text = _text(capture["endpointInput"])
                rows = _json_rows(json.loads(text)) if ctype.endswith("json") else parse_csv_rows(text)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                input_error = str(exc)
        if isinstance(capture.get("endpointOutput"), dict):
            try:
                ctype, text = _text(capture["endpointOutput"])
                scores = parse_scores(text, ctype)
            except (ValueError, TypeError) as exc:
                output_error = str(exc)
        yield CaptureRecord(
            event_id=str(meta["eventId"]),
            inference_id=str(meta["inferenceId"]) if meta.get("inferenceId") else None,
            inference_time=meta.get("inferenceTime"),
            rows=rows,
            scores=scores,
            input_error=input_error,
            output_error=output_error,
        )


def _label(field: str) -> int:
    value = field.strip().lower()
    if value in ("1", "1.0", "true", "yes"):
        return 1
    if value in ("0", "0.0", "false", "no"):
        return 0
    raise ValueError(f"label {field!r} is not 0/1")


def read_ground_truth_lines(lines: Iterable[str | bytes]) -> Iterator[GroundTruthRecord]:
    """Parse Model Monitor ground-truth JSON Lines; a label that is not 0/1 is a format error."""
    for number, obj in _lines(lines):
        meta, data = obj.get("eventMetadata"), obj.get("groundTruthData")
        if not isinstance(meta, dict) or not meta.get("eventId") or not isinstance(data, dict):
            raise CaptureFormatError(f"line {number}: missing groundTruthData or eventMetadata.eventId")
        try:
            ctype, text = _text(data)
            if ctype.endswith("json"):
                obj_ = json.loads(text)
                fields = [str(v) for v in (obj_ if isinstance(obj_, list) else [obj_])]
            else:
                fields = [f for row in parse_csv_rows(text) for f in row]
            labels = [_label(f) for f in fields]
        except ValueError as exc:
            raise CaptureFormatError(f"line {number}: {exc}") from None
        yield GroundTruthRecord(event_id=str(meta["eventId"]), labels=labels)


def capture_prefix(destination_uri: str, endpoint: str, variant: str) -> tuple[str, str]:
    """(bucket, key prefix) of one variant's capture files: `<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/`.

    `destination_uri` is the endpoint config's `DataCaptureConfig.DestinationS3Uri` or the inference
    experiment's `DataStorageConfig.Destination`.
    """
    if not destination_uri.startswith("s3://"):
        raise ValueError(f"capture destination must be an s3:// URI, got {destination_uri!r}")
    bucket, _, path = destination_uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"capture destination has no bucket: {destination_uri!r}")
    parts = [p for p in (path.strip("/"), endpoint, variant) if p]
    return bucket, "/".join(parts) + "/"


def capture_line(
    event_id: str,
    input_csv: str | None,
    output_csv: str | None,
    *,
    inference_id: str | None = None,
    inference_time: str = "2026-01-01T00:00:00Z",
) -> str:
    """One data-capture line in SageMaker's format (CSV encoding): for emulators, fixtures and tests."""
    capture: dict[str, Any] = {}
    if input_csv is not None:
        capture["endpointInput"] = {
            "observedContentType": "text/csv", "mode": "INPUT", "data": input_csv, "encoding": "CSV",
        }
    if output_csv is not None:
        capture["endpointOutput"] = {
            "observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": output_csv, "encoding": "CSV",
        }
    meta = {"eventId": event_id, "inferenceTime": inference_time}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    return json.dumps({"captureData": capture, "eventMetadata": meta, "eventVersion": "0"})


def ground_truth_line(event_id: str, label: int) -> str:
    """One Model Monitor ground-truth line."""
    return json.dumps(
        {"groundTruthData": {"data": str(label), "encoding": "CSV"}, "eventMetadata": {"eventId": event_id}, "eventVersion": "0"}
    )
