"""Lambda handler for `start_shadow_test`: writes `shadow` (status RUNNING, or SKIPPED when there is no
production endpoint to shadow / no shadow requested)."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import StartShadowTestInput
from functions.steps.shadow_test import start_shadow_test

load_settings(required=("shadow_experiment_role_arn",))

handler = step_handler(
    "start_shadow_test", StartShadowTestInput, lambda doc: start_shadow_test(doc.upload, load_settings())
)
