"""create_endpoint_config: one production variant named as the LIVE endpoint's, data capture on.

AWS: "When doing a blue/green or rolling deployment, your new endpoint configuration must have the same variant
name as the old endpoint configuration" (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html).
So the name comes from DescribeEndpoint (ProductionVariants[0].VariantName; it changes only when a shadow test
promotes its shadow variant), or PRODUCTION_VARIANT_NAME (AllTraffic) for a new endpoint. Model versions are
told apart by model and endpoint config name, never by variant name.
"""

from __future__ import annotations

from functions.adapters import sagemaker
from functions.config import Settings
from functions.errors import DeploymentFailed
from functions.models import EndpointConfigResource, Upload


def live_variant(endpoint: str) -> tuple[str | None, str | None]:
    """(production variant name, serving config) of the endpoint; (None, None) when there is no endpoint."""
    described = sagemaker.describe_endpoint(endpoint) or {}
    variants = described.get("ProductionVariants") or [{}]
    return variants[0].get("VariantName"), described.get("EndpointConfigName")


def live_variant_name(endpoint: str) -> str | None:
    """The endpoint's current production variant name, None when there is no endpoint (or no variant yet)."""
    return live_variant(endpoint)[0]


def create_endpoint_config(upload: Upload, settings: Settings) -> EndpointConfigResource:
    live, live_config = live_variant(upload.endpoint_name)
    wanted = live or settings.production_variant_name
    arn, created, variant = sagemaker.create_endpoint_config(
        upload.names.endpoint_config,
        variant_name=wanted,
        model_name=upload.names.model,
        instance_type=settings.instance_type,
        instance_count=settings.instance_count,
        data_capture_uri=settings.data_capture_uri,
        metric_publish_frequency_seconds=settings.metric_publish_frequency_seconds,  # audit row 13
    )
    if not created and live and variant != live:
        # Configs are immutable: one made when the endpoint had another variant name can never update it.
        raise DeploymentFailed(
            f"endpoint config {upload.names.endpoint_config} exists with production variant {variant!r}, but "
            f"{upload.endpoint_name} serves variant {live!r}; a blue/green update needs the same name: "
            "upload the model as a new version"
        )
    return EndpointConfigResource(
        name=upload.names.endpoint_config,
        arn=arn,
        status="created" if created else "existed",
        variant=variant or wanted,
        live_config=live_config if live_config != upload.names.endpoint_config else None,
    )
