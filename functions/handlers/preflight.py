"""Lambda handler for `preflight`: writes `preflight`, or raises ModelRejected (the REJECTED path)."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import PreFlightInput
from functions.steps.preflight import preflight

load_settings()

handler = step_handler("preflight", PreFlightInput, lambda doc: preflight(doc.upload, load_settings()))
