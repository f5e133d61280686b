"""Lambda handler for `check_shadow_test`: writes `shadow` with the analysis so far; `done` + `verdict` when
the test window is over (the state machine loops Wait -> check while `shadow.done` is false)."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import CheckShadowTestInput
from functions.steps.shadow_test import check_shadow_test

load_settings()

handler = step_handler(
    "check_shadow_test", CheckShadowTestInput, lambda doc: check_shadow_test(doc.shadow, load_settings())
)
