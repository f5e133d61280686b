"""Lambda handler for `housekeeping`: after DEPLOYED / DEPLOYED_UNVERIFIED / PROMOTED, delete the alarms of
retired configs and prune old endpoint configs and models (writes `housekeeping`; the state machine catches any
error into `housekeeping_error`, so the outcome stands)."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import HousekeepingInput
from functions.steps.housekeeping import housekeeping

load_settings(required=("table_name", "model_bucket"))

handler = step_handler("housekeeping", HousekeepingInput, lambda doc: housekeeping(doc, load_settings()))
