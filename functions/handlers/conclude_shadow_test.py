"""Lambda handler for `conclude_shadow_test`: StopInferenceExperiment with Promote/Remove per `shadow.verdict`;
writes `shadow` (status CONCLUDED, `actions`)."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import ConcludeShadowTestInput
from functions.steps.shadow_test import conclude_shadow_test

load_settings()

handler = step_handler(
    "conclude_shadow_test", ConcludeShadowTestInput, lambda doc: conclude_shadow_test(doc.shadow)
)
