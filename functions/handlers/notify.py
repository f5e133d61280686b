"""Lambda handler for `notify`: one SNS message for `outcome`. Runs on Catch paths with partial documents, so
its input model accepts anything; only a failed publish (or a missing TOPIC_ARN) makes it fail."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import NotifyInput
from functions.steps.notify import notify

load_settings(required=("topic_arn",))

handler = step_handler("notify", NotifyInput, lambda doc: notify(doc, load_settings()))
