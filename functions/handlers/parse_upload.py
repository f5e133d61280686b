"""Lambda handler for `parse_upload`: the trigger event in, `upload` out."""

from __future__ import annotations

from functions.config import load_settings
from functions.errors import InvalidTrigger
from functions.handlers._runtime import step_handler
from functions.models import ParseUploadInput
from functions.steps.parse_upload import parse_upload

load_settings()  # validate the environment at cold start

handler = step_handler(
    "parse_upload", ParseUploadInput, lambda doc: parse_upload(doc, load_settings()), invalid=InvalidTrigger
)
