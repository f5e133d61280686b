"""Data capture to S3 in SageMaker's JSON Lines format, batched and flushed about once a second.

Key layout as SageMaker writes it: <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from local.sagemaker.flusher import PeriodicFlusher

log = logging.getLogger(__name__)


def _encoding(content_type: str) -> tuple[str, bool]:
    media = content_type.split(";")[0].strip().lower()
    if media == "text/csv":
        return "CSV", False
    if media == "application/json":
        return "JSON", False
    return "BASE64", True


def _payload(data: bytes, content_type: str, mode: str) -> dict[str, str]:
    encoding, b64 = _encoding(content_type)
    text = base64.b64encode(data).decode() if b64 else data.decode("utf-8", errors="replace")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def capture_record(
    request: bytes, request_type: str, response: bytes | None, response_type: str, inference_id: str,
    capture_input: bool = True, capture_output: bool = True,
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if capture_input:
        data["endpointInput"] = _payload(request, request_type, "INPUT")
    if capture_output and response is not None:
        data["endpointOutput"] = _payload(response, response_type, "OUTPUT")
    now = datetime.now(UTC)
    return {
        "captureData": data,
        "eventMetadata": {
            "eventId": str(uuid.uuid4()),
            "inferenceId": inference_id,
            "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        },
        "eventVersion": "0",
    }


def split_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri.split("://", 1)[1]
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


class CaptureWriter(PeriodicFlusher):
    """Writes with the role SageMaker writes with (`client_for(role)`: the model's execution role for endpoint
    capture, the experiment's RoleArn for its DataStorageConfig); a write the role may not do is logged and lost
    (assumption: AWS documents no failure mode for capture writes)."""

    def __init__(self, s3: Any, interval: float = 1.0, client_for: Any = None) -> None:
        super().__init__(interval, "sm-capture")
        self._s3 = s3
        self._client_for = client_for or (lambda role: s3)
        self._buf: dict[tuple[str, str, str, str | None], list[str]] = defaultdict(list)

    def add(self, destination: str, endpoint: str, variant: str, record: dict[str, Any],
            role_arn: str | None = None) -> None:
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self._buf[(destination, endpoint, variant, role_arn)].append(line)

    def flush(self) -> None:
        with self._lock:
            buf, self._buf = self._buf, defaultdict(list)
        now = datetime.now(UTC)
        for (destination, endpoint, variant, role), lines in buf.items():
            bucket, prefix = split_s3_uri(destination)
            name = f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
            key = "/".join(p for p in (prefix, endpoint, variant, f"{now:%Y/%m/%d/%H}", name) if p)
            try:
                self._client_for(role).put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
            except Exception:  # a missing bucket must not break serving
                log.exception("data capture to s3://%s/%s failed", bucket, key)
