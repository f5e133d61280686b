"""Shared pieces of the end-to-end tests: trained models (cached), a local cloud per module, alerts.

Models are trained once with few trials into `.cache/e2e-models` (or $GUARDRAIL_E2E_MODELS) and reused.
Each test process spawns one local cloud on free ports for its session. Under `make test` (`--dist loadfile`)
the scenarios and the fault tests land on different workers, each with its own cloud; in one process the
scenarios run first (they start from no endpoint and chain on it) and the fault tests carry on from there.
"""

import fcntl
import os
from pathlib import Path

import pytest

from guardrail.demo import Target

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("GUARDRAIL_E2E_MODELS", PROJECT_ROOT / ".cache" / "e2e-models"))
TRIALS = os.environ.get("GUARDRAIL_E2E_TRIALS", "3")


def needed_models() -> tuple[str, ...]:
    """Every model `guardrail train --scenarios` builds: the scenario table's and those only the e2e tests upload
    (the evidence tests' `worse`). The demo's `ensure_models` checks the table's alone."""
    from training.scenarios import ALL_MODELS

    return ALL_MODELS


def missing_models(models_dir: Path) -> list[str]:
    return [m for m in needed_models() if not (models_dir / m / "model.tar.gz").is_file()]


@pytest.fixture(scope="session")
def models_dir() -> Path:
    from guardrail.demo import DemoError, ensure_models

    class Quiet:
        def print(self, *args, **kwargs):
            pass

    MODELS.mkdir(parents=True, exist_ok=True)
    with open(MODELS / ".train.lock", "w") as lock:  # two xdist workers must not train into one folder at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_models(MODELS, train=True, trials=int(TRIALS), console=Quiet())
        if missing_models(MODELS):  # --reuse: only the missing (or stale) ones are built
            from training.cli import main as train_main

            if train_main(["--out", str(MODELS), "--reuse", "--trials", TRIALS, "--scenarios"]):
                raise DemoError(f"training {', '.join(missing_models(MODELS))} into {MODELS} failed")
    assert not missing_models(MODELS), missing_models(MODELS)
    return MODELS


@pytest.fixture(scope="session")
def data(models_dir):
    from guardrail.demo import holdout

    return holdout(models_dir)


def pytest_collection_modifyitems(items):
    """Scenario tests before fault tests (the first deployment must find no endpoint)."""
    # test_approval_abort.py carries on from whatever the endpoint serves (issue 15), after the scenarios
    order = {"test_scenarios.py": 0, "test_faults.py": 1, "test_approval_abort.py": 2}
    items.sort(key=lambda item: order.get(item.path.name, -1))


@pytest.fixture(scope="session")
def cloud(tmp_path_factory):
    from local.cloud import LocalCloud

    handle = LocalCloud.spawn(tmp_path_factory.mktemp("cloud"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def target(cloud) -> Target:
    return Target.from_outputs(cloud.outputs, cloud.state.state_machines, cloud.env, cloud.state.alert_queue_url)


@pytest.fixture(scope="session")
def alerts(target):
    from local.alerts import AlertStream

    return AlertStream(target.env, target.alert_queue_url)
