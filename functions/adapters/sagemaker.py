"""SageMaker control plane: models, endpoint configs, endpoints, inference experiments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.adapters._client import client as _client
from functions.errors import (
    EndpointNotReady,
    ResourceAlreadyExists,
    ResourceInUse,
    ResourceNotFound,
    aws_errors,
)


def client() -> Any:
    return _client("sagemaker")


def _describe(operation: str, **kwargs: Any) -> dict[str, Any] | None:
    try:
        with aws_errors(operation):
            return getattr(client(), operation)(**kwargs)
    except ResourceNotFound:
        return None


def describe_endpoint(name: str) -> dict[str, Any] | None:
    return _describe("describe_endpoint", EndpointName=name)


def describe_endpoint_config(name: str) -> dict[str, Any] | None:
    return _describe("describe_endpoint_config", EndpointConfigName=name)


def describe_model(name: str) -> dict[str, Any] | None:
    return _describe("describe_model", ModelName=name)


def describe_inference_experiment(name: str) -> dict[str, Any] | None:
    return _describe("describe_inference_experiment", Name=name)


def create_model(name: str, image: str, model_data_url: str, role_arn: str) -> tuple[str | None, bool]:
    """Create the model; return (arn, created). An existing model of that name counts as done."""
    try:
        with aws_errors("create_model"):
            arn = client().create_model(
                ModelName=name,
                ExecutionRoleArn=role_arn,
                PrimaryContainer={"Image": image, "ModelDataUrl": model_data_url, "Mode": "SingleModel"},
            )["ModelArn"]
            return arn, True
    except ResourceAlreadyExists:
        existing = describe_model(name)
        return (existing or {}).get("ModelArn"), False


def create_endpoint_config(
    name: str,
    variant_name: str,
    model_name: str,
    instance_type: str,
    instance_count: int,
    data_capture_uri: str | None,
    metric_publish_frequency_seconds: int = 60,
) -> tuple[str | None, bool, str | None]:
    """Create the endpoint config (one production variant, data capture when a URI is set); return (arn,
    created, production variant name). An existing config counts as done; its variant name is read back."""
    request: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": variant_name,
                "ModelName": model_name,
                "InstanceType": instance_type,
                "InitialInstanceCount": instance_count,
                "InitialVariantWeight": 1.0,
            }
        ],
    }
    if metric_publish_frequency_seconds != 60:  # SageMaker's default; alarms shorter than 60 s need more
        # API_MetricsConfig: "When EnableEnhancedMetrics is set to False, this interval applies to utilization
        # metrics only; invocation metrics continue to be published at the default 60-second interval."
        request["MetricsConfig"] = {
            "EnableEnhancedMetrics": True,
            "MetricPublishFrequencyInSeconds": metric_publish_frequency_seconds,
        }
    if data_capture_uri:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": data_capture_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }
    try:
        with aws_errors("create_endpoint_config"):
            return client().create_endpoint_config(**request)["EndpointConfigArn"], True, variant_name
    except ResourceAlreadyExists:
        existing = describe_endpoint_config(name) or {}
        variants = existing.get("ProductionVariants") or [{}]
        return existing.get("EndpointConfigArn"), False, variants[0].get("VariantName")


def create_endpoint(name: str, config_name: str) -> str:
    with aws_errors("create_endpoint"):
        return client().create_endpoint(EndpointName=name, EndpointConfigName=config_name)["EndpointArn"]


def delete_endpoint(name: str) -> None:
    """DeleteEndpoint (the only way out of a Failed endpoint); an endpoint already gone counts as done."""
    try:
        with aws_errors("delete_endpoint"):
            client().delete_endpoint(EndpointName=name)
    except ResourceNotFound:
        return


def update_endpoint(name: str, config_name: str, deployment_config: dict[str, Any] | None) -> str:
    """UpdateEndpoint; EndpointNotReady when another update is still in progress (the state machine retries)."""
    request: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config_name}
    if deployment_config:
        request["DeploymentConfig"] = deployment_config
    try:
        with aws_errors("update_endpoint"):
            return client().update_endpoint(**request)["EndpointArn"]
    except ResourceInUse as exc:
        raise EndpointNotReady(f"endpoint {name} is busy: {exc.aws_message}") from exc


def create_inference_experiment(
    *,
    name: str,
    endpoint_name: str,
    role_arn: str,
    production: dict[str, Any],
    shadow: dict[str, Any],
    sampling_percent: int,
    start: datetime,
    end: datetime,
    data_capture_uri: str | None,
    description: str = "",
) -> str:
    """Start a ShadowMode experiment. `production` / `shadow`: {ModelName, VariantName, InstanceType,
    InstanceCount}."""

    def variant(v: dict[str, Any]) -> dict[str, Any]:
        return {
            "ModelName": v["ModelName"],
            "VariantName": v["VariantName"],
            "InfrastructureConfig": {
                "InfrastructureType": "RealTimeInference",
                "RealTimeInferenceConfig": {
                    "InstanceType": v["InstanceType"],
                    "InstanceCount": v["InstanceCount"],
                },
            },
        }

    request: dict[str, Any] = {
        "Name": name,
        "Type": "ShadowMode",
        "Schedule": {"StartTime": start, "EndTime": end},
        "Description": description[:1024],
        "RoleArn": role_arn,
        "EndpointName": endpoint_name,
        "ModelVariants": [variant(production), variant(shadow)],
        "ShadowModeConfig": {
            "SourceModelVariantName": production["VariantName"],
            "ShadowModelVariants": [
                {"ShadowModelVariantName": shadow["VariantName"], "SamplingPercentage": sampling_percent}
            ],
        },
    }
    if data_capture_uri:
        request["DataStorageConfig"] = {"Destination": data_capture_uri}
    with aws_errors("create_inference_experiment"):
        return client().create_inference_experiment(**request)["InferenceExperimentArn"]


def stop_inference_experiment(name: str, actions: dict[str, str], reason: str) -> str:
    with aws_errors("stop_inference_experiment"):
        return client().stop_inference_experiment(
            Name=name, ModelVariantActions=actions, DesiredState="Completed", Reason=reason[:1024]
        )["InferenceExperimentArn"]


# --- housekeeping: what exists, and deleting what is retired ---


def list_models() -> list[dict[str, Any]]:
    """Every model of the account and region: [{ModelName, ModelArn, CreationTime}]."""
    with aws_errors("list_models"):
        return [m for page in client().get_paginator("list_models").paginate() for m in page.get("Models", [])]


def list_endpoint_configs() -> list[dict[str, Any]]:
    """Every endpoint config: [{EndpointConfigName, EndpointConfigArn, CreationTime}]."""
    with aws_errors("list_endpoint_configs"):
        pages = client().get_paginator("list_endpoint_configs").paginate()
        return [c for page in pages for c in page.get("EndpointConfigs", [])]


def list_endpoints() -> list[dict[str, Any]]:
    """Every endpoint: [{EndpointName, EndpointStatus, ...}] (no config name: DescribeEndpoint has it)."""
    with aws_errors("list_endpoints"):
        return [e for page in client().get_paginator("list_endpoints").paginate() for e in page.get("Endpoints", [])]


def delete_endpoint_config(name: str) -> bool:
    """DeleteEndpointConfig; False when it was already gone. AWS does not refuse a config an endpoint uses
    (API_DeleteEndpointConfig: "You must not delete an EndpointConfig in use by an endpoint"): the caller checks."""
    try:
        with aws_errors("delete_endpoint_config"):
            client().delete_endpoint_config(EndpointConfigName=name)
    except ResourceNotFound:
        return False
    return True


def delete_model(name: str) -> bool:
    """DeleteModel (the model entry only, not its artifact); False when it was already gone."""
    try:
        with aws_errors("delete_model"):
            client().delete_model(ModelName=name)
    except ResourceNotFound:
        return False
    return True
