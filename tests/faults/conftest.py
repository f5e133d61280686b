"""The fault matrix (issue 12 §8) shares tests/e2e's session fixtures: trained models, one local cloud per test
process, the alert stream."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("e2e_fixtures", Path(__file__).resolve().parents[1] / "e2e" / "conftest.py")
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)  # type: ignore[union-attr]

models_dir, data, cloud, target, alerts = _e2e.models_dir, _e2e.data, _e2e.cloud, _e2e.target, _e2e.alerts
