"""Lambda handler for `acquire_lock`: writes `lock` (EndpointLocked when another execution deploys)."""

from __future__ import annotations

from functions.config import load_settings
from functions.errors import InvalidInput
from functions.handlers._runtime import step_handler
from functions.models import AcquireLockInput, LockState
from functions.steps.lock import acquire_lock

load_settings(required=("table_name",))


def _run(doc: AcquireLockInput) -> LockState:
    if not doc.execution:
        raise InvalidInput("acquire_lock needs the execution name at `execution` ($$.Execution.Name)")
    return acquire_lock(doc.upload, doc.execution, load_settings(), execution_arn=doc.execution_arn)


handler = step_handler("acquire_lock", AcquireLockInput, _run)
