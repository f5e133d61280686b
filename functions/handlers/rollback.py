"""Lambda handler for `rollback`: post-deployment alarm -> UpdateEndpoint back to the previous config; writes
`watch` with rolled_back=true."""

from __future__ import annotations

from functions.config import load_settings
from functions.handlers._runtime import step_handler
from functions.models import RollbackInput
from functions.steps.rollback import rollback

load_settings()

handler = step_handler("rollback", RollbackInput, lambda doc: rollback(doc.deployment, doc.watch))
