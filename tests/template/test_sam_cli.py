"""The SAM CLI accepts and builds the application (needs the aws-sam-cli venv: `make sam-venv`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM = shutil.which("sam") or str(ROOT / ".venv-sam" / "bin" / "sam")

pytestmark = [
    pytest.mark.sam,
    pytest.mark.skipif(not Path(SAM).exists(), reason="aws-sam-cli not installed (make sam-venv)"),
]


def sam(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(
        [SAM, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_sam_validate_lint():
    result = sam("validate", "--lint", "--template", "template.yaml", "--region", "us-east-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_build_packages_only_the_functions_package(tmp_path):
    build_dir = tmp_path / "build"
    result = sam(
        "build", "--build-in-source", "--parallel", "--template", "template.yaml",
        "--build-dir", str(build_dir), "--region", "us-east-1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    functions = sorted(p for p in build_dir.iterdir() if p.is_dir())
    assert len(functions) == 15
    for folder in functions:
        assert [p.name for p in folder.iterdir()] == ["functions"], folder
        assert (folder / "functions" / "handlers" / "notify.py").is_file()
        assert not list(folder.rglob("__pycache__"))
    size = sum(f.stat().st_size for f in build_dir.rglob("*") if f.is_file())
    assert size < 20 * 1024 * 1024, f"build is {size} bytes: something besides functions/ was copied"
    built = (build_dir / "template.yaml").read_text()
    assert "guardrail.asl.json" in built and "CodeUri: ParseUploadFunction" in built
