"""Lambda handler for `abort_shadow_test`: a step failed after StartShadowTest; StopInferenceExperiment with the
shadow Removed and production Retained before the execution ends FAILED; writes `shadow_abort`."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import AbortShadowTestInput
from functions.steps.shadow_test import abort_shadow_test

load_settings()

handler = step_handler(
    "abort_shadow_test",
    AbortShadowTestInput,
    lambda doc: abort_shadow_test(
        doc.upload.names.experiment,
        f"{(doc.error or {}).get('Error', 'error')}: {(doc.error or {}).get('Cause', '')}"[:500],
    ),
)
