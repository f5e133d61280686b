"""Lambda handler for `quality_gate`: writes `gate`, or raises ModelRejected."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import QualityGateInput
from functions.steps.quality_gate import quality_gate

load_settings()

handler = step_handler(
    "quality_gate", QualityGateInput, lambda doc: quality_gate(doc.upload, load_settings())
)
