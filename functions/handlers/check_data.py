"""Lambda handler for `check_data`: drift and data quality of the endpoint's captured traffic.

Invoked by the state machine after the post-deployment watch (writes `data_check`; a breach is notified but
does not change the deployment's outcome) and directly by the EventBridge schedule, whose "Scheduled Event"
carries no `upload`: the endpoint then comes from ENDPOINT_NAME.
"""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import CheckDataInput
from functions.steps.data_checks import check_data

load_settings(required=("topic_arn", "data_capture_uri"))

handler = step_handler("check_data", CheckDataInput, lambda doc: check_data(doc, load_settings()))
