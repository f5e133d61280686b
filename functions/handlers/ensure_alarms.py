"""Lambda handler for `ensure_alarms`: writes `alarms` (AlarmNotFound when they cannot be verified)."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import EnsureAlarmsInput
from functions.steps.ensure_alarms import ensure_alarms

load_settings()

handler = step_handler(
    "ensure_alarms",
    EnsureAlarmsInput,
    lambda doc: ensure_alarms(
        doc.upload,
        load_settings(),
        doc.endpoint_config.variant if doc.endpoint_config else None,
        doc.endpoint_config.live_config if doc.endpoint_config else None,
    ),
)
