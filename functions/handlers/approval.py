"""Lambda handler for `approval`: invoked by a `lambda:invoke.waitForTaskToken` task; stores the task token as
`approval#<execution>` and publishes the approval request (functions/steps/approval.py). The state machine then
waits for `guardrail approve|reject` (SendTaskSuccess/SendTaskFailure) or the task's timeout."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import ApprovalInput
from functions.steps.approval import request_approval

load_settings(required=("table_name", "topic_arn"))

handler = step_handler("approval", ApprovalInput, lambda doc: request_approval(doc, load_settings()))
