"""S3: artifacts beside the model (evaluation.json, deployment.json, model.tar.gz)."""

from __future__ import annotations

import json
from typing import Any

from functions.adapters._client import client as _client
from functions.errors import ArtifactNotFound, InvalidArtifact, ResourceNotFound, aws_errors


def client() -> Any:
    return _client("s3")


def head(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any] | None:
    """Object metadata, or None when the object does not exist."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        with aws_errors("head_object"):
            return client().head_object(**kwargs)
    except ResourceNotFound:
        return None


def read_bytes(bucket: str, key: str, byte_range: str | None = None, version_id: str | None = None) -> bytes:
    """The object's bytes (or a `bytes=a-b` range); ArtifactNotFound when it does not exist."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if byte_range:
        kwargs["Range"] = byte_range
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        with aws_errors("get_object"):
            return client().get_object(**kwargs)["Body"].read()
    except ResourceNotFound as exc:
        raise ArtifactNotFound(f"s3://{bucket}/{key} does not exist") from exc


def open_stream(bucket: str, key: str, version_id: str | None = None) -> Any:
    """The object's body as a stream (read it in chunks: artifacts can be large); ArtifactNotFound if missing."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        with aws_errors("get_object"):
            return client().get_object(**kwargs)["Body"]
    except ResourceNotFound as exc:
        raise ArtifactNotFound(f"s3://{bucket}/{key} does not exist") from exc


def read_json(bucket: str, key: str) -> Any:
    """Parse a JSON object; ArtifactNotFound when missing, InvalidArtifact when not valid JSON."""
    body = read_bytes(bucket, key)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArtifact(f"s3://{bucket}/{key} is not valid JSON: {exc}") from exc


def read_json_if_exists(bucket: str, key: str) -> Any | None:
    try:
        return read_json(bucket, key)
    except ArtifactNotFound:
        return None


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key)."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InvalidArtifact(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def copy(bucket: str, source_key: str, dest_key: str, source_version: str | None = None) -> None:
    """Server-side copy within the bucket (of the exact version when given); ArtifactNotFound if the source is gone."""
    source: dict[str, str] = {"Bucket": bucket, "Key": source_key}
    if source_version:
        source["VersionId"] = source_version
    try:
        with aws_errors("copy_object"):
            client().copy_object(Bucket=bucket, Key=dest_key, CopySource=source)
    except ResourceNotFound as exc:
        raise ArtifactNotFound(f"s3://{bucket}/{source_key} does not exist") from exc
