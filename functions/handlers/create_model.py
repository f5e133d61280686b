"""Lambda handler for `create_model`: writes `model`."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import CreateModelInput
from functions.steps.create_model import create_model

load_settings(required=("serving_image", "sagemaker_role_arn"))

handler = step_handler(
    "create_model", CreateModelInput, lambda doc: create_model(doc.upload, load_settings())
)
