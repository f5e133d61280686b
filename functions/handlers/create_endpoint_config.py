"""Lambda handler for `create_endpoint_config`: writes `endpoint_config`."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import CreateEndpointConfigInput
from functions.steps.create_endpoint_config import create_endpoint_config

load_settings()

handler = step_handler(
    "create_endpoint_config",
    CreateEndpointConfigInput,
    lambda doc: create_endpoint_config(doc.upload, load_settings()),
)
