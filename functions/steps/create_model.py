"""create_model: the SageMaker Model for the uploaded artifact (an existing one counts as done).

Deployed versions are immutable (issue 12 §5, failure-scenarios F04b): the model never points at the upload key,
which anyone can overwrite, but at a copy of the exact S3 version that passed the gate, under a content-addressed
key outside the trigger pattern (`deployed/<sha256>/model.tar.gz`, evaluation.json beside it, where the quality
gate reads production's evaluation). A model of that name that already exists counts as done only if it points at
the same bytes; an overwrite of a deployed version with other bytes is refused (InvalidArtifact), never DEPLOYED.
"""

from __future__ import annotations

import hashlib

from functions.adapters import s3, sagemaker
from functions.config import Settings
from functions.errors import InvalidArtifact
from functions.models import ModelResource, Upload

DEPLOYED_PREFIX = "deployed/"  # outside `<ModelPrefix>*/*/model.tar.gz`: copies start no execution
CHUNK = 1 << 20


def deployed_copy(upload: Upload) -> tuple[str, str]:
    """(sha256, s3 URL) of the content-addressed copy of the uploaded version, made if missing (idempotent)."""
    digest = hashlib.sha256()
    body = s3.open_stream(upload.bucket, upload.key, upload.version_id)
    try:
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
    finally:
        body.close()
    sha = digest.hexdigest()
    key = f"{DEPLOYED_PREFIX}{sha}/model.tar.gz"
    if s3.head(upload.bucket, key) is None:
        s3.copy(upload.bucket, upload.key, key, upload.version_id)  # the version hashed above, not the latest
    evaluation = f"{DEPLOYED_PREFIX}{sha}/evaluation.json"
    if s3.head(upload.bucket, evaluation) is None:
        s3.copy(upload.bucket, upload.evaluation_key, evaluation)
    return sha, f"s3://{upload.bucket}/{key}"


def create_model(upload: Upload, settings: Settings) -> ModelResource:
    settings.require("serving_image", "sagemaker_role_arn")
    sha, url = deployed_copy(upload)
    arn, created = sagemaker.create_model(
        upload.names.model,
        image=settings.serving_image or "",
        model_data_url=url,
        role_arn=settings.sagemaker_role_arn or "",
    )
    if not created:
        existing = sagemaker.describe_model(upload.names.model) or {}
        serving = (existing.get("PrimaryContainer") or {}).get("ModelDataUrl")
        if serving != url:
            raise InvalidArtifact(
                f"{upload.model_name}/{upload.model_version} was deployed before as model {upload.names.model} "
                f"({serving}); this upload of {upload.key} has other bytes (sha256 {sha}). A deployed version is "
                "immutable: upload the new artifact as a new version"
            )
    return ModelResource(
        name=upload.names.model,
        arn=arn,
        status="created" if created else "existed",
        model_data_url=url,
        sha256=sha,
    )
