"""What runs in Lambda is what was tested (audit row 23): every function gets pydantic and Powertools from
PinnedDepsLayer, which `sam build` fills (Makefile build-PinnedDepsLayer, no Docker) at pyproject.toml's pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse
from test_sam_cli import ROOT, SAM, sam

TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
PINS = {
    re.split(r"[\[=]", dep)[0]: dep.split("==")[1]
    for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
}


def test_functions_use_the_pinned_layer_and_no_public_powertools_layer():
    layers = TEMPLATE["Globals"]["Function"]["Layers"]
    assert {"Ref": "PinnedDepsLayer"} in layers
    assert not [layer for layer in layers if "AWSLambdaPowertools" in str(layer)]
    assert TEMPLATE["Resources"]["PinnedDepsLayer"]["Metadata"]["BuildMethod"] == "makefile"
    assert re.search(r"^build-PinnedDepsLayer:", (ROOT / "Makefile").read_text(), re.M)


@pytest.mark.sam
@pytest.mark.skipif(not Path(SAM).exists(), reason="aws-sam-cli not installed (make sam-venv)")
def test_sam_build_vendors_exactly_the_pinned_versions(tmp_path):
    build_dir = tmp_path / "build"
    result = sam(
        "build", "--build-in-source", "PinnedDepsLayer", "--template", "template.yaml",
        "--build-dir", str(build_dir), "--region", "us-east-1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    python = build_dir / "PinnedDepsLayer" / "python"
    versions = {p.name.removesuffix(".dist-info").split("-")[0].lower(): p.name.removesuffix(".dist-info").split("-")[1]
                for p in python.glob("*.dist-info")}  # fmt: skip
    assert versions["pydantic"] == PINS["pydantic"]
    assert versions["aws_lambda_powertools"] == PINS["aws-lambda-powertools"]
    # aws-xray-sdk pulls botocore: it is the tested one, with its boto3, not whatever is newest.
    assert versions["boto3"] == PINS["boto3"] and versions["botocore"] == PINS["botocore"]
    size = sum(f.stat().st_size for f in python.rglob("*") if f.is_file())
    assert size < 60_000_000, size  # leaves room under Lambda's 250 MB for PreFlight's xgboost layer
    cores = list(python.glob("pydantic_core/_pydantic_core.cpython-313-x86_64-linux-gnu.so"))
    assert cores, "pydantic-core must be the python3.13 x86_64 Linux build"
    assert (python / "aws_xray_sdk").is_dir()  # the [tracer] extra
