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
    layer = build_dir / "XgboostLayer"  # pre-flight's layer (Makefile build-XgboostLayer), not a function
    functions = sorted(p for p in build_dir.iterdir() if p.is_dir() and p.name.endswith("Function"))
    assert len(functions) == (ROOT / "template.yaml").read_text().count("Type: AWS::Serverless::Function")
    for folder in functions:
        assert [p.name for p in folder.iterdir()] == ["functions"], folder
        assert (folder / "functions" / "handlers" / "notify.py").is_file()
        assert not list(folder.rglob("__pycache__"))
    size = sum(f.stat().st_size for d in functions for f in d.rglob("*") if f.is_file())
    assert size < 20 * 1024 * 1024, f"build is {size} bytes: something besides functions/ was copied"
    # The layer: cp313 manylinux wheels of the pinned versions, no tests, far enough under Lambda's 250 MB
    # (262144000 bytes, function + all layers unzipped) to leave room for the function and Powertools.
    assert [p.name for p in layer.iterdir()] == ["python"]
    installed = {p.name for p in (layer / "python").glob("*.dist-info")}
    assert {"xgboost_cpu-3.0.5.dist-info", "numpy-2.4.6.dist-info", "scipy-1.17.1.dist-info"} <= installed
    assert list((layer / "python" / "numpy" / "_core").glob("_multiarray_umath.cpython-313-x86_64-linux-gnu.so"))
    assert not list(layer.rglob("tests"))
    wheel = (layer / "python" / "xgboost_cpu-3.0.5.dist-info" / "WHEEL").read_text()
    assert "manylinux_2_28_x86_64" in wheel  # not the reduced manylinux2014 build (AL2023 has glibc 2.34)
    layer_size = sum(f.stat().st_size for f in layer.rglob("*") if f.is_file())
    assert layer_size <= 200_000_000, layer_size
    # PreFlightFunction unzipped = its code + every layer built here (the Globals' layers + XgboostLayer)
    layers = [p for p in build_dir.iterdir() if p.is_dir() and p.name.endswith("Layer")]
    preflight = sum(f.stat().st_size for d in [build_dir / "PreFlightFunction", *layers] for f in d.rglob("*")
                    if f.is_file())
    assert preflight < 262_144_000, f"PreFlightFunction with its layers is {preflight} bytes unzipped"
    built = (build_dir / "template.yaml").read_text()
    assert "guardrail.asl.json" in built and "CodeUri: ParseUploadFunction" in built
