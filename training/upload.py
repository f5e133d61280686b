"""Upload a model directory to the model bucket under `<prefix><name>/<version>/`, the trigger file last.

Plain boto3: reaches the local cloud through AWS_ENDPOINT_URL and real AWS otherwise.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from training.artifacts import FILES

_NAME = re.compile(r"^[a-z0-9-]+$")
_VERSION = re.compile(r"^[a-zA-Z0-9.-]+$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> (bucket, "some/prefix/")."""
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", uri)
    if not match:
        raise ValueError(f"not an s3://bucket[/prefix] URI: {uri!r}")
    prefix = (match.group(2) or "").strip("/")
    return match.group(1), prefix + "/" if prefix else ""


def default_version() -> str:
    return datetime.now(UTC).strftime("v%Y%m%d-%H%M%S")


def upload_model(model_dir: Path | str, s3_uri: str, *, name: str | None = None, version: str | None = None,
                 deployment: dict[str, Any] | None = None, s3_client: Any = None) -> dict[str, str]:
    """Upload evaluation.json, deployment.json, then model.tar.gz; returns {file: s3 key}.

    `deployment` replaces the directory's deployment.json (e.g. to run xgb-best as a shadow test).
    """
    model_dir = Path(model_dir)
    name = name or model_dir.name
    version = version or default_version()
    if not _NAME.match(name):
        raise ValueError(f"model name {name!r} must match [a-z0-9-]+")
    if not _VERSION.match(version):
        raise ValueError(f"version {version!r} must match [a-zA-Z0-9.-]+")
    missing = [f for f in FILES if not (model_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir}: missing {missing}")
    bucket, prefix = parse_s3_uri(s3_uri)
    s3 = s3_client or boto3.client("s3")
    keys = {}
    for file in FILES:  # evaluation.json, deployment.json, model.tar.gz: the last one starts the pipeline
        key = f"{prefix}{name}/{version}/{file}"
        body = json.dumps(deployment).encode() if file == "deployment.json" and deployment is not None \
            else (model_dir / file).read_bytes()
        content_type = "application/json" if file.endswith(".json") else "application/gzip"
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        keys[file] = key
    return keys
