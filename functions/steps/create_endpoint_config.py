"""create_endpoint_config: one production variant (unique per model version), data capture on."""

from __future__ import annotations

from functions.adapters import sagemaker
from functions.config import Settings
from functions.models import CreatedResource, Upload


def create_endpoint_config(upload: Upload, settings: Settings) -> CreatedResource:
    arn, created = sagemaker.create_endpoint_config(
        upload.names.endpoint_config,
        variant_name=upload.names.variant,
        model_name=upload.names.model,
        instance_type=settings.instance_type,
        instance_count=settings.instance_count,
        data_capture_uri=settings.data_capture_uri,
    )
    return CreatedResource(
        name=upload.names.endpoint_config, arn=arn, status="created" if created else "existed"
    )
