"""`guardrail demo --only incompatible-model` as a user runs it (its own local cloud, no endpoint yet): the
rollback needs an endpoint to roll back to, so first-deployment runs first as its setup, and both are checked
against what ran before them (issue 11 §5). One cloud for this module: the demo's own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def test_a_rollback_alone_first_deploys_what_it_rolls_back_to(models_dir, tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "guardrail"), "demo", "--only", "incompatible-model", "--no-train",
         "--models", str(models_dir), "--reports", str(tmp_path / "reports"), "--workdir", str(tmp_path / "cloud")],
        capture_output=True, text=True, cwd=ROOT, timeout=580, env={**os.environ, "COLUMNS": "200"},
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr
    assert "first-deployment (setup for incompatible-model)" in out
    assert "all 2 scenarios as expected" in out
    assert {p.name for p in (tmp_path / "reports").iterdir()} >= {"first-deployment.html", "incompatible-model.html"}
