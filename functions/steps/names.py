"""Names of the things Guardrail creates, within SageMaker's limits.

SageMaker names: <= 63 characters matching `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`. When the readable form does not
fit or had to be altered (e.g. dots in a version), a short hash of the raw input is appended so that two
different inputs never map to the same name.
"""

from __future__ import annotations

import hashlib
import re

from functions.errors import InvalidTrigger
from functions.models import ResourceNames

MAX_NAME = 63
MAX_EXPERIMENT_NAME = 120
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MODEL_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
MODEL_VERSION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?$")
_INVALID = re.compile(r"[^a-zA-Z0-9-]+")


def short_hash(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def sagemaker_name(raw: str, suffix: str = "", limit: int = MAX_NAME) -> str:
    """A valid SageMaker name for `raw` + `suffix`, hashed when shortened or altered."""
    clean = _INVALID.sub("-", raw).strip("-")
    name = f"{clean}{suffix}"
    if clean == raw and len(name) <= limit and SAGEMAKER_NAME.match(name[:MAX_NAME]):
        return name
    tag = f"-{short_hash(raw + suffix)}"
    keep = limit - len(tag) - len(suffix)
    if keep < 1:
        raise InvalidTrigger(f"name suffix {suffix!r} leaves no room within {limit} characters")
    return f"{clean[:keep].rstrip('-')}{tag}{suffix}"


def validate_model_id(name: str, version: str) -> None:
    if not MODEL_NAME.match(name):
        raise InvalidTrigger(f"model name {name!r} must match [a-z0-9-] (no leading/trailing '-')")
    if not MODEL_VERSION.match(version):
        raise InvalidTrigger(f"model version {version!r} must match [a-zA-Z0-9-.]")
    if len(name) > MAX_NAME or len(version) > MAX_NAME:
        raise InvalidTrigger(f"model name and version must each be <= {MAX_NAME} characters")


def resource_names(endpoint: str, name: str, version: str, upload_key: str) -> ResourceNames:
    """All names for one model version. There is NO per-version production variant name: a blue/green update
    must keep the live endpoint's variant name (AWS deployment-guardrails-exclusions), so the production variant
    is named by create_endpoint_config from DescribeEndpoint (PRODUCTION_VARIANT_NAME for a new endpoint).
    Model versions are told apart by model and endpoint config name. Only the shadow variant of an inference
    experiment gets a name of its own (it sits beside production, so it must differ from it). The experiment
    name also carries the upload's identity, so a re-upload never collides with an old test."""
    if not SAGEMAKER_NAME.match(endpoint):
        raise InvalidTrigger(
            f"endpoint name {endpoint!r} is not a valid SageMaker name (<= 63, [a-zA-Z0-9-])"
        )
    base = f"{name}-{version}"
    model = sagemaker_name(base)
    config = sagemaker_name(base, "-cfg")
    return ResourceNames(
        model=model,
        endpoint_config=config,
        shadow_variant=sagemaker_name(base, "-shadow"),
        # Alarm names may be 255 characters; they carry the config they watch (one pair per deployment).
        error_alarm=f"guardrail-{endpoint}-{config}-5xx-rate",
        latency_alarm=f"guardrail-{endpoint}-{config}-model-latency",
        experiment=sagemaker_name(f"{base}-shadow", f"-{short_hash(upload_key, 8)}", MAX_EXPERIMENT_NAME),
    )
