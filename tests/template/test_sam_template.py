"""template.yaml and samconfig.toml: wired to the ASL, the Lambda code and its settings; least privilege."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from functions.config import settings_from

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
ASL_TEXT = (ROOT / "statemachine" / "guardrail.asl.json").read_text()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
FUNCTIONS = {lid: r for lid, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
STATE_MACHINE = RESOURCES["GuardrailStateMachine"]["Properties"]

CONTRACT_PARAMETERS = [
    "EndpointName",
    "ModelPrefix",
    "NotificationEmail",
    "DefaultStrategy",
    "CanaryPercent",
    "LinearStepPercent",
    "WaitIntervalSeconds",
    "TerminationWaitSeconds",
    "MaxExecutionTimeoutSeconds",
    "PostDeploymentWatchSeconds",
    "PollIntervalSeconds",
    "MaxPollAttempts",
    "ShadowDurationSeconds",
    "ShadowSamplingPercent",
    "AlarmPeriodSeconds",
    "AlarmEvaluationPeriods",
    "ErrorRateThreshold",
    "LatencyThresholdMicros",
    "MinAuc",
    "MaxDisparateImpactDeviation",
    "ServingImage",
    "InstanceType",
    "InstanceCount",
]
# Actions that have no resource-level permissions in IAM, so "*" is the only possible resource.
RESOURCE_STAR_ALLOWED = {
    # housekeeping (issue 14 §6): the Service Authorization Reference lists no resource type for SageMaker's List*
    "sagemaker:ListModels",
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListEndpoints",
    "ecr:GetAuthorizationToken",
    "cloudwatch:GetMetricData",
    "cloudwatch:PutMetricData",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
}


def test_contract_parameters_are_declared():
    assert set(CONTRACT_PARAMETERS) <= set(PARAMETERS)


def test_definition_substitutions_match_asl_placeholders():
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_TEXT))
    assert placeholders == set(STATE_MACHINE["DefinitionSubstitutions"])


def test_each_function_placeholder_points_at_its_function():
    for name, value in STATE_MACHINE["DefinitionSubstitutions"].items():
        if name.endswith("FunctionArn"):
            assert value == {"Fn::GetAtt": [name.removesuffix("Arn"), "Arn"]}
    asl_functions = {f"{m}Function" for m in re.findall(r"\$\{(\w+)FunctionArn\}", ASL_TEXT)}
    # ExecutionEnded is no state: the state machine's own status-change events invoke it (issue 12).
    assert asl_functions == set(FUNCTIONS) - {"ExecutionEndedFunction"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handler_exists_and_is_packaged_by_makefile(logical_id):
    props = FUNCTIONS[logical_id]["Properties"]
    module, _, attr = props["Handler"].rpartition(".")
    assert module.startswith("functions.handlers.")
    source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
    assert re.search(rf"^{attr}\b|^def {attr}\(", source, re.M), f"{module} defines no {attr}"
    assert FUNCTIONS[logical_id]["Metadata"]["BuildMethod"] == "makefile"
    assert props.get("Policies"), f"{logical_id} has no policies of its own"
    # The Makefile has the pattern target `sam build` calls for it.
    assert re.search(r"^build-%Function:", (ROOT / "Makefile").read_text(), re.M)


def test_environment_names_are_settings_the_functions_read():
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    from functions.config import Settings

    fields = {name.upper() for name in Settings.model_fields}
    unknown = {k for k in env if not k.startswith("POWERTOOLS_")} - fields
    assert not unknown, f"set in template.yaml but not read by functions/config.py: {unknown}"
    for required in ("TABLE_NAME", "TOPIC_ARN", "MODEL_BUCKET", "SAGEMAKER_ROLE_ARN", "SERVING_IMAGE"):
        assert required in env


def _overrides(env: str) -> dict[str, str]:
    raw = SAMCONFIG[env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in raw)


def _check_parameter(name: str, value: str) -> None:
    spec = PARAMETERS[name]
    if spec["Type"] == "Number":
        number = float(value)
        assert number >= spec.get("MinValue", float("-inf")), (name, value)
        assert number <= spec.get("MaxValue", float("inf")), (name, value)
    if "AllowedValues" in spec:
        assert value in [str(v) for v in spec["AllowedValues"]], (name, value)
    if "AllowedPattern" in spec:
        assert re.fullmatch(spec["AllowedPattern"], value), (name, value)


def _function_environment(values: dict[str, str]) -> dict[str, str]:
    """Globals environment with parameters resolved; resources get plausible physical ids."""
    fake = {"LockTable": "guardrail-locks", "ModelBucket": "guardrail-models",
            "OutcomeTopic": "arn:aws:sns:us-east-1:123456789012:guardrail"}  # fmt: skip
    env: dict[str, str] = {}
    for key, value in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, dict) and "Ref" in value:
            env[key] = values.get(value["Ref"], fake.get(value["Ref"], ""))
        elif isinstance(value, str):
            env[key] = value
        else:  # Sub/GetAtt/If: composed from resources
            env[key] = {
                "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/guardrail-sagemaker",
                "SHADOW_EXPERIMENT_ROLE_ARN": "arn:aws:iam::123456789012:role/guardrail-shadow-experiment",
                "DATA_CAPTURE_URI": "s3://guardrail-models/data-capture/guardrail-endpoint",
                "GROUND_TRUTH_URI": "s3://guardrail-models/ground-truth",
                "SERVING_IMAGE": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5",
            }[key]
    return env


@pytest.mark.parametrize("env", ["default", "prod", "local"])
def test_samconfig_environments_are_valid_settings(env):
    overrides = _overrides(env)
    assert set(overrides) <= set(PARAMETERS), set(overrides) - set(PARAMETERS)
    values = {name: str(spec.get("Default", "")) for name, spec in PARAMETERS.items()} | overrides
    for name, value in values.items():
        if value or name not in ("NotificationEmail", "ServingImage"):
            _check_parameter(name, value)
    # What the functions would get validates (e.g. the timeout exceeds bake + termination wait).
    settings = settings_from(_function_environment(values))
    assert settings.max_execution_timeout_seconds > settings.wait_interval_seconds


def test_local_environment_is_fast():
    local = _overrides("local")
    assert int(local["AlarmPeriodSeconds"]) == 10
    assert int(local["PollIntervalSeconds"]) <= 2
    # As short as SageMaker's fastest publishing allows: an alarm sees a fault after one published period plus
    # the publish delay (2 x MetricPublishFrequencySeconds), and the verdicts need a few metric periods.
    publish = int(local["MetricPublishFrequencySeconds"])
    assert int(local["WaitIntervalSeconds"]) == 2 * publish
    assert int(local["PostDeploymentWatchSeconds"]) == 2 * publish
    # The shadow verdict's mean latency is a sequential t-test over metric periods: locally it needs ~10 of them
    # to decide (samconfig comment), and no more than that keeps the demo short.
    periods = int(local["ShadowDurationSeconds"]) / int(local["MetricPeriodSeconds"])
    assert 10 <= periods <= 12
    assert SAMCONFIG["local"]["deploy"]["parameters"]["stack_name"]


# --- the translated CloudFormation (what `sam deploy` would create) ----------------------------------


class _ManagedPolicies(dict):
    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    sam = copy.deepcopy(TEMPLATE)
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            resource["Properties"]["Definition"] = json.loads(ASL_TEXT)
            del resource["Properties"]["DefinitionUri"]
    sam["Globals"]["Function"]["CodeUri"] = "s3://guardrail-code/functions.zip"
    for layer in (r for r in sam["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion"):
        layer["Properties"]["ContentUri"] = "s3://guardrail-code/layer.zip"  # what `sam package` puts there
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name="us-east-1"))
    return translator.translate(sam, parameter_values={}, get_managed_policy_map=_ManagedPolicies)


def _statements(cfn: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for lid, resource in cfn["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    found.append((lid, statement))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_permissions(cfn):
    statements = _statements(cfn)
    assert len(statements) > 20
    for lid, statement in statements:
        actions = _as_list(statement["Action"])
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), (lid, actions)
        if "*" in _as_list(statement["Resource"]):
            assert set(actions) <= RESOURCE_STAR_ALLOWED, (lid, actions)
        if "iam:PassRole" in actions:
            assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
            # Models get the model role; the inference experiment its own (aws-audit #3).
            role = "ShadowExperimentRole" if lid.startswith("StartShadowTest") else "SageMakerExecutionRole"
            assert statement["Resource"] == {"Fn::GetAtt": [role, "Arn"]}, lid
    # Only managed policies SAM adds itself (Lambda basic execution, X-Ray for tracing).
    for lid, resource in cfn["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            for arn in resource["Properties"].get("ManagedPolicyArns", []):
                assert re.search(
                    r"AWSLambdaBasicExecutionRole|AWSXrayWriteOnlyAccess|AWSXRayDaemonWriteAccess", str(arn)
                ), (lid, arn)


def test_sagemaker_permissions_are_scoped_to_the_endpoint(cfn):
    for lid, statement in _statements(cfn):
        actions = _as_list(statement["Action"])
        if any(a in ("sagemaker:UpdateEndpoint", "sagemaker:CreateEndpoint") for a in actions):
            resources = json.dumps(statement["Resource"])
            assert "endpoint/${EndpointName}" in resources, lid


def test_rule_starts_the_state_machine_on_model_uploads(cfn):
    rules = {
        lid: r for lid, r in cfn["Resources"].items()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    }
    assert sorted(rules) == ["ExecutionEndedFunctionExecutionEnded", "GuardrailStateMachineModelUploaded"]
    props = rules["GuardrailStateMachineModelUploaded"]["Properties"]
    assert props["Targets"][0]["Arn"] == {"Ref": "GuardrailStateMachine"}
    pattern = props["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"] and pattern["source"] == ["aws.s3"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "ModelBucket"}]
    # Outputs reference resources that exist after translation.
    for name, output in TEMPLATE["Outputs"].items():
        ref = output["Value"].get("Ref") or output["Value"].get("Fn::GetAtt", [None])[0]
        assert ref in cfn["Resources"] or ref in PARAMETERS, name


@pytest.mark.parametrize(
    ("key", "matches"),
    [
        ("models/bank-marketing/v1-xgb-best/model.tar.gz", True),
        ("models/bank-marketing/v2.1/model.tar.gz", True),
        ("models/bank-marketing/v1/evaluation.json", False),
        ("models/model.tar.gz", False),
        ("data-capture/guardrail-endpoint/model.tar.gz", False),
        ("uploads/bank-marketing/v1/model.tar.gz", False),
    ],
)
def test_event_pattern_selects_model_archives(cfn, key, matches):
    from moto.events.models import EventPattern

    pattern = json.loads(
        json.dumps(cfn["Resources"]["GuardrailStateMachineModelUploaded"]["Properties"]["EventPattern"])
        .replace('{"Ref": "ModelBucket"}', '"guardrail-models"')
        .replace('{"Fn::Sub": "${ModelPrefix}*/*/model.tar.gz"}', '"models/*/*/model.tar.gz"')
    )
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "guardrail-models"}, "object": {"key": key}},
    }
    assert EventPattern.load(json.dumps(pattern)).matches_event(event) is matches


def test_bucket_and_table_hardening():
    bucket = RESOURCES["ModelBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    deny = RESOURCES["ModelBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    table = RESOURCES["LockTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert RESOURCES["OutcomeTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "TopicKey"}
    assert RESOURCES["OutcomeEmailSubscription"]["Condition"] == "HasEmail"
    assert STATE_MACHINE["Tracing"]["Enabled"] is True and STATE_MACHINE["Type"] == "STANDARD"


def test_data_check_runs_on_a_schedule_and_after_the_watch(cfn):
    """The drift / data-quality check: a scheduled rule invokes the function directly (it notifies by itself),
    and the state machine runs it after the post-deployment watch."""
    schedules = {
        lid: r for lid, r in cfn["Resources"].items()
        if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]
    }
    assert list(schedules) == ["CheckDataFunctionDataCheckSchedule"]
    rule = schedules["CheckDataFunctionDataCheckSchedule"]["Properties"]
    assert rule["ScheduleExpression"] == {"Ref": "DataCheckSchedule"}
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["CheckDataFunction", "Arn"]}
    function = cfn["Resources"]["CheckDataFunction"]["Properties"]
    assert function["Handler"] == "functions.handlers.check_data.handler"
    machine = cfn["Resources"]["GuardrailStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["CheckDataFunctionArn"] == {"Fn::GetAtt": ["CheckDataFunction", "Arn"]}
