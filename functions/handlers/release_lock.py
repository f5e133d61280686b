"""Lambda handler for `release_lock`: releases only this execution's lock; safe to call twice."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import ReleaseLockInput
from functions.steps.lock import release_lock

load_settings(required=("table_name",))

handler = step_handler(
    "release_lock", ReleaseLockInput, lambda doc: release_lock(doc, doc.execution, load_settings())
)
