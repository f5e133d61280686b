"""create_model: the SageMaker Model for the uploaded artifact (an existing one counts as done)."""

from __future__ import annotations

from functions.adapters import sagemaker
from functions.config import Settings
from functions.models import CreatedResource, Upload


def create_model(upload: Upload, settings: Settings) -> CreatedResource:
    settings.require("serving_image", "sagemaker_role_arn")
    arn, created = sagemaker.create_model(
        upload.names.model,
        image=settings.serving_image or "",
        model_data_url=upload.artifact_uri,
        role_arn=settings.sagemaker_role_arn or "",
    )
    return CreatedResource(name=upload.names.model, arn=arn, status="created" if created else "existed")
