"""Template and samconfig settings that reviews/aws-audit.md asked for (besides IAM: test_iam_policies.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())


def _overrides(env: str) -> dict[str, str]:
    raw = SAMCONFIG[env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in raw)


def test_canary_verdict_is_alarms_only_on_aws():
    """aws-audit #10: with 60 s metric periods the sequential canary verdict cannot gather its latency samples
    within a bake (it stays NO_DATA), so AWS deployments default to the 5XX/latency alarms alone; the local cloud
    (1 s metric periods) keeps exercising it."""
    assert TEMPLATE["Parameters"]["CanaryVerdictMethod"]["Default"] == "alarms-only"
    for env in ("default", "prod"):
        assert _overrides(env).get("CanaryVerdictMethod", "alarms-only") == "alarms-only", env
    assert _overrides("local")["CanaryVerdictMethod"] == "msprt"


def test_new_endpoints_get_a_production_variant_name_parameter():
    """aws-audit #1: the production variant keeps one name; a parameter names it for a new endpoint."""
    parameter = TEMPLATE["Parameters"]["ProductionVariantName"]
    assert parameter["Default"] == "AllTraffic"
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["PRODUCTION_VARIANT_NAME"] == {"Ref": "ProductionVariantName"}
