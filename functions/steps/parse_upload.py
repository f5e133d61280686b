"""parse_upload: validate the trigger, derive every name, read deployment.json, check the artifacts exist."""

from __future__ import annotations

import tarfile
import zlib
from pathlib import PurePosixPath

from pydantic import ValidationError

from functions.adapters import s3
from functions.config import Settings
from functions.errors import ArtifactNotFound, InvalidArtifact, InvalidTrigger
from functions.models import ApprovalSettings, DeploymentRequest, ParseUploadInput, ShadowSettings, Upload
from functions.steps.names import resource_names, validate_model_id

ARTIFACT = "model.tar.gz"
GZIP_MAGIC = b"\x1f\x8b"


def split_key(key: str, prefix: str) -> tuple[str, str]:
    """`<prefix><name>/<version>/model.tar.gz` -> (name, version); InvalidTrigger otherwise."""
    if not key.startswith(prefix):
        raise InvalidTrigger(f"key {key!r} is outside the model prefix {prefix!r}")
    parts = key[len(prefix) :].split("/")
    if len(parts) != 3 or parts[2] != ARTIFACT or not parts[0] or not parts[1]:
        raise InvalidTrigger(f"key {key!r} must look like {prefix}<name>/<version>/{ARTIFACT}")
    name, version = parts[0], parts[1]
    validate_model_id(name, version)
    return name, version


def read_deployment_request(bucket: str, key: str) -> DeploymentRequest:
    raw = s3.read_json_if_exists(bucket, key)
    if raw is None:
        return DeploymentRequest()
    try:
        return DeploymentRequest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'root'}: {e['msg']}" for e in exc.errors())
        raise InvalidTrigger(f"s3://{bucket}/{key} is invalid: {problems}") from exc


def approval_settings(request: DeploymentRequest, settings: Settings) -> ApprovalSettings:
    """deployment.json `approval` field by field over the stack's Approval* parameters (issue 15 §1)."""
    asked = request.approval.model_dump(exclude_none=True) if request.approval else {}
    return ApprovalSettings(
        before_promote=asked.get("before_promote", settings.approval_before_promote),
        before_update=asked.get("before_update", settings.approval_before_update),
        timeout_seconds=asked.get("timeout_seconds", settings.approval_timeout_seconds),
        on_timeout=asked.get("on_timeout", settings.approval_on_timeout),
    )


def check_artifact(bucket: str, key: str, version_id: str | None) -> None:
    """The artifact must still exist and be a whole tar.gz of regular files with safe names, else the container
    could never load it (or SageMaker would unpack a path outside /opt/ml/model): refused before any SageMaker
    call. The exact version that triggered the execution is read, streamed (artifacts can be large)."""
    meta = s3.head(bucket, key, version_id)
    if meta is None:
        raise ArtifactNotFound(f"s3://{bucket}/{key} does not exist")
    if int(meta.get("ContentLength", 0)) < len(GZIP_MAGIC):
        raise InvalidArtifact(f"s3://{bucket}/{key} is empty")
    if s3.read_bytes(bucket, key, byte_range="bytes=0-1", version_id=version_id)[:2] != GZIP_MAGIC:
        raise InvalidArtifact(f"s3://{bucket}/{key} is not a gzip archive")
    check_tar_members(f"s3://{bucket}/{key}", s3.open_stream(bucket, key, version_id))


def check_tar_members(where: str, stream: object) -> list[str]:
    """Walk a tar.gz stream once: every member a regular file or directory with a relative name that stays
    inside the extraction folder, at least one regular file, and the archive whole. Returns the file names."""
    files: list[str] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:  # type: ignore[call-overload]
            for member in tar:
                path = PurePosixPath(member.name)
                if member.name.startswith("/") or ".." in path.parts:
                    raise InvalidArtifact(f"{where} has an unsafe member name {member.name!r} (absolute or '..')")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise InvalidArtifact(f"{where} member {member.name!r} is not a regular file (link or device)")
                files.append(member.name)
    except (tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error, OSError) as exc:
        kind = "truncated" if isinstance(exc, EOFError) or "unexpected end" in str(exc).lower() else "not a tar archive"
        raise InvalidArtifact(f"{where} is {kind}: {exc or type(exc).__name__}") from exc
    if not files:
        raise InvalidArtifact(f"{where} holds no model file (an empty tar archive)")
    return files


def parse_upload(event: ParseUploadInput, settings: Settings) -> Upload:
    bucket = event.detail.bucket.name
    obj = event.detail.object
    if settings.model_bucket and bucket != settings.model_bucket:
        raise InvalidTrigger(f"bucket {bucket!r} is not the model bucket {settings.model_bucket!r}")
    name, version = split_key(obj.key, settings.model_prefix)
    prefix = obj.key[: -len(ARTIFACT)]
    identity = obj.version_id or obj.etag
    if not identity:
        raise InvalidTrigger("the event carries neither detail.object.version-id nor detail.object.etag")
    idempotency_key = f"upload#{bucket}/{obj.key}#{identity}"

    names = resource_names(settings.endpoint_name, name, version, idempotency_key)
    check_artifact(bucket, obj.key, obj.version_id)
    evaluation_key = f"{prefix}evaluation.json"
    if s3.head(bucket, evaluation_key) is None:
        raise ArtifactNotFound(f"s3://{bucket}/{evaluation_key} does not exist (upload it before the model)")
    deployment_key = f"{prefix}deployment.json"
    request = read_deployment_request(bucket, deployment_key)
    shadow = request.shadow
    return Upload(
        bucket=bucket,
        key=obj.key,
        etag=obj.etag,
        version_id=obj.version_id,
        size=obj.size,
        artifact_uri=f"s3://{bucket}/{obj.key}",
        prefix=prefix,
        evaluation_key=evaluation_key,
        deployment_key=deployment_key,
        model_name=name,
        model_version=version,
        endpoint_name=settings.endpoint_name,
        strategy=request.strategy or settings.default_strategy,
        canary_percent=request.canary_percent or settings.canary_percent,
        linear_step_percent=request.linear_step_percent or settings.linear_step_percent,
        rolling_batch_percent=request.rolling_batch_percent or settings.rolling_batch_percent,
        rollback_batch_percent=request.rollback_batch_percent,
        shadow=ShadowSettings(
            enabled=bool(shadow and shadow.enabled),
            sampling_percent=(shadow and shadow.sampling_percent) or settings.shadow_sampling_percent,
            duration_seconds=(shadow and shadow.duration_seconds) or settings.shadow_duration_seconds,
        ),
        names=names,
        idempotency_key=idempotency_key,
        preflight=request.preflight is not False,
        min_requests=request.guardrails.min_requests if request.guardrails else None,
        evidence_policy=request.evidence_policy,
        event_time=event.time,
        sequencer=obj.sequencer,
        event_id=event.id,
        supersede=settings.supersede if request.supersede is None else request.supersede,
        approval=approval_settings(request, settings),
    )
