"""template.yaml refuses what AWS (or the code) cannot run: audit rows 9, 12, 13, 17, 19, 21, 22.

CloudFormation `Rules` only know Fn::And/Or/Not/Equals/Contains/EachMemberEquals/EachMemberIn/RefAll/ValueOf
(no arithmetic), so this file evaluates them here with a small interpreter over the enumerable parameters.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "template.yaml").read_text()
TEMPLATE = yaml_parse(TEXT)
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
PUBLISH_FREQUENCIES = [10, 30, 60, 120, 180, 240, 300]  # MetricsConfig.MetricPublishFrequencyInSeconds

# Integer parameters (seconds and counts) and the range each must be limited to.
INTEGER_RANGES = {
    "CanaryPercent": (1, 50),
    "LinearStepPercent": (10, 50),
    "WaitIntervalSeconds": (0, 3600),
    "TerminationWaitSeconds": (0, 3600),
    "MaxExecutionTimeoutSeconds": (600, 28800),
    "PostDeploymentWatchSeconds": (0, 86400),
    "PollIntervalSeconds": (1, 3600),
    "MaxPollAttempts": (1, 2000),  # ~9 history events per poll; 25,000 events per execution (row 19)
    "LockRetrySeconds": (0, 3600),
    "LockMaxAttempts": (0, 20),
    "ShadowDurationSeconds": (1, 1_296_000),  # schedule ~2x duration, experiments <= 30 days (row 12)
    "ShadowSamplingPercent": (1, 100),
    "AlarmEvaluationPeriods": (1, 100),
    "DataCheckWindowSeconds": (1, 86400),
    "InstanceCount": (1, 1000),
}


def _ref_values(params: dict[str, str]) -> dict[str, str]:
    defaults = {name: str(spec.get("Default", "")) for name, spec in PARAMETERS.items()}
    return defaults | params


def _eval(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_eval(n, values) for n in node]
    if not isinstance(node, dict):
        return str(node)
    (fn, arg), = node.items()
    if fn == "Ref":
        return values[arg]
    args = _eval(arg, values) if fn != "Fn::Not" else arg
    if fn == "Fn::Equals":
        return args[0] == args[1]
    if fn == "Fn::Contains":
        return args[1] in args[0]
    if fn == "Fn::And":
        return all(args)
    if fn == "Fn::Or":
        return any(args)
    if fn == "Fn::Not":
        return not _eval(arg[0], values)
    raise AssertionError(f"intrinsic {fn} is not allowed in Rules here")


def rules_accept(params: dict[str, str]) -> list[str]:
    """Descriptions of the failed assertions (empty: CloudFormation would accept the parameters)."""
    values = _ref_values(params)
    failed = []
    for name, rule in TEMPLATE.get("Rules", {}).items():
        if "RuleCondition" in rule and not _eval(rule["RuleCondition"], values):
            continue
        for assertion in rule["Assertions"]:
            if not _eval(assertion["Assert"], values):
                failed.append(f"{name}: {assertion.get('AssertDescription')}")
    return failed


@pytest.mark.parametrize("name", sorted(INTEGER_RANGES))
def test_integer_parameters_reject_decimals_and_out_of_range(name):
    lo, hi = INTEGER_RANGES[name]
    spec = PARAMETERS[name]
    # AllowedPattern applies to String parameters only; a Number parameter takes "1.5".
    assert spec["Type"] == "String", name
    pattern = re.compile(spec["AllowedPattern"])
    for good in {lo, hi, (lo + hi) // 2, int(spec["Default"])}:
        assert pattern.fullmatch(str(good)), (name, good)
    for bad in (f"{lo}.5", f"{hi}.0", str(hi + 1), "-1", f"0{max(lo, 1)}", "", "1e3", " 5"):
        assert not pattern.fullmatch(bad), (name, bad)
    if lo > 0:
        assert not pattern.fullmatch(str(lo - 1)), name
    step = max(1, hi // 5000)
    for value in range(0, min(hi + 2, 100_000), step):  # the regex is exactly the range
        assert bool(pattern.fullmatch(str(value))) == (lo <= value <= hi), (name, value)
    assert f"{lo}" in spec["ConstraintDescription"] and f"{hi}" in spec["ConstraintDescription"]


def test_error_rate_threshold_must_be_positive():
    assert PARAMETERS["ErrorRateThreshold"]["MinValue"] > 0


def test_model_prefix_is_limited_to_safe_key_characters():
    pattern = re.compile(PARAMETERS["ModelPrefix"]["AllowedPattern"])
    for good in ("models/", "a.b/c_d-e/", "Team/models.v2/"):
        assert pattern.fullmatch(good), good
    for bad in ("models*/", "m!/", "it's/", "m(1)/", "models", "/models/", "a//b/", "m s/"):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize(
    "alarm,frequency,metric",
    itertools.product(
        PARAMETERS["AlarmPeriodSeconds"]["AllowedValues"],
        PUBLISH_FREQUENCIES,
        PARAMETERS["MetricPeriodSeconds"]["AllowedValues"],
    ),
)
def test_rules_reject_alarm_and_metric_periods_the_publish_frequency_cannot_fill(alarm, frequency, metric):
    assert PARAMETERS["MetricPublishFrequencySeconds"]["AllowedValues"] == PUBLISH_FREQUENCIES
    params = {
        "AlarmPeriodSeconds": str(alarm),
        "MetricPublishFrequencySeconds": str(frequency),
        "MetricPeriodSeconds": str(metric),
    }
    works = alarm % frequency == 0 and metric % frequency == 0
    assert (rules_accept(params) == []) == works, (params, rules_accept(params))


def test_metric_periods_are_ones_sagemaker_can_publish():
    # SageMaker publishes at most every 10 s: shorter metric periods are mostly empty on AWS.
    assert min(PARAMETERS["MetricPeriodSeconds"]["AllowedValues"]) >= 10
    assert PARAMETERS["MetricPublishFrequencySeconds"]["Default"] == 60  # AWS's default


@pytest.mark.parametrize("env", ["default", "prod", "local"])
def test_samconfig_environments_pass_the_rules(env):
    raw = SAMCONFIG[env]["deploy"]["parameters"]["parameter_overrides"]
    overrides = dict(item.split("=", 1) for item in raw)
    assert rules_accept(overrides) == []


def test_local_parameters_are_what_aws_allows_and_short():
    raw = SAMCONFIG["local"]["deploy"]["parameters"]["parameter_overrides"]
    local = dict(item.split("=", 1) for item in raw)
    assert local["MetricPublishFrequencySeconds"] == "10"
    assert int(local["AlarmPeriodSeconds"]) == 10 and int(local["MetricPeriodSeconds"]) == 10


def _load_script():
    spec = importlib.util.spec_from_file_location("xgboost_registry", ROOT / "scripts" / "xgboost_registry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_xgboost_registry_mapping_is_generated_from_the_sdk():
    script = _load_script()
    from training.versions import CONTAINER_FRAMEWORK_VERSION

    assert script.VERSION == CONTAINER_FRAMEWORK_VERSION
    assert script.current_block(TEXT) == script.render(), "run scripts/xgboost_registry.py"
    mapping = TEMPLATE["Mappings"]["XGBoostImageRegistry"]
    assert {r: v["Account"] for r, v in mapping.items()} == script.registries()
    assert len(mapping) >= 37 and {"ap-southeast-1", "eu-west-2", "ca-central-1", "sa-east-1"} <= set(mapping)


@pytest.mark.parametrize("logical_id", ["ModelBucket", "LockTable", "TopicKey", "StateMachineLogGroup"])
def test_stateful_resources_survive_stack_deletion_and_replacement(logical_id):
    resource = RESOURCES[logical_id]
    assert resource.get("DeletionPolicy") == "Retain", logical_id
    assert resource.get("UpdateReplacePolicy") == "Retain", logical_id


def test_upload_rule_has_a_dead_letter_queue():
    event = RESOURCES["GuardrailStateMachine"]["Properties"]["Events"]["ModelUploaded"]["Properties"]
    assert event["DeadLetterConfig"]["Type"] == "SQS"
    # What SAM makes of it: the rule's target names the queue, and EventBridge may send to it.
    import copy
    import json

    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(TEMPLATE)
    machine = sam["Resources"]["GuardrailStateMachine"]["Properties"]
    machine["Definition"] = json.loads((ROOT / "statemachine" / "guardrail.asl.json").read_text())
    del machine["DefinitionUri"]
    sam["Globals"]["Function"]["CodeUri"] = "s3://guardrail-code/functions.zip"
    for layer in (r for r in sam["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion"):
        layer["Properties"]["ContentUri"] = "s3://guardrail-code/layer.zip"  # what `sam package` puts there

    class Managed(dict):
        def __missing__(self, name: str) -> str:
            return f"arn:aws:iam::aws:policy/{name}"

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name="us-east-1"))
    cfn = translator.translate(sam, parameter_values={}, get_managed_policy_map=Managed)
    target = cfn["Resources"]["GuardrailStateMachineModelUploaded"]["Properties"]["Targets"][0]
    queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert cfn["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    policies = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::SQS::QueuePolicy"]
    statement = policies[0]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
