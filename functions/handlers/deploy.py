"""Lambda handler for `deploy`: writes `deployment` (CREATE or guarded UPDATE, status IN_PROGRESS)."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import DeployInput
from functions.steps.deploy import deploy

load_settings()

handler = step_handler("deploy", DeployInput, lambda doc: deploy(doc.upload, doc.alarms, load_settings()))
