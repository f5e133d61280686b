"""Lambda handler for the ExecutionEnded rule: an execution ABORTED / TIMED_OUT / FAILED releases its lock, stops
its shadow experiment and says what the endpoint serves (functions/steps/execution_ended.py)."""

from __future__ import annotations

from functions.config import load_settings
from functions.errors import InvalidTrigger
from functions.handlers._runtime import step_handler
from functions.models import ExecutionEndedInput
from functions.steps.execution_ended import execution_ended

load_settings(required=("table_name", "topic_arn"))

handler = step_handler(
    "execution_ended", ExecutionEndedInput, lambda doc: execution_ended(doc, load_settings()), invalid=InvalidTrigger
)
