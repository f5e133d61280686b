"""Shared pieces of the end-to-end tests: trained models (cached), a local cloud per module, alerts.

Models are trained once with few trials into `.cache/e2e-models` (or $GUARDRAIL_E2E_MODELS) and reused.
Each test module gets its own local cloud on free ports (the scenarios chain on one endpoint; the fault
tests start from their own).
"""

import os
from pathlib import Path

import pytest

from local.demo import Target

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("GUARDRAIL_E2E_MODELS", PROJECT_ROOT / ".cache" / "e2e-models"))
TRIALS = os.environ.get("GUARDRAIL_E2E_TRIALS", "3")


@pytest.fixture(scope="session")
def models_dir() -> Path:
    from local.demo import ensure_models

    class Quiet:
        def print(self, *args, **kwargs):
            pass

    ensure_models(MODELS, train=True, trials=int(TRIALS), console=Quiet())
    return MODELS


@pytest.fixture(scope="session")
def data(models_dir):
    from local.demo import holdout

    return holdout(models_dir)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    from local.cloud import LocalCloud

    handle = LocalCloud.spawn(tmp_path_factory.mktemp("cloud"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def target(cloud) -> Target:
    return Target.from_outputs(cloud.outputs, cloud.state.state_machines, cloud.env, cloud.state.alert_queue_url)


@pytest.fixture(scope="module")
def alerts(target):
    from local.alerts import AlertStream

    return AlertStream(target.env, target.alert_queue_url)
