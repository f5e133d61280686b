"""IAM in the SAM-translated template against what the code calls (reviews/aws-audit.md §2 and rows 2-5, 14, 16,
20, 24). The calls are read statically from functions/ (tests/template/iam_calls.py); the policies are what
`sam deploy` would create (aws-sam-translator expands the policy templates)."""

from __future__ import annotations

import copy
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, str(Path(__file__).parent))
import iam_calls

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
FUNCTIONS = {lid: r for lid, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
ACCOUNT_ARN = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"

# Actions the code needs that a static read of its calls cannot see, with the AWS reason.
EXTRA_NEEDED: dict[str, dict[str, str]] = {
    "DeployFunction": {
        # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html
        "cloudwatch:DescribeAlarms": "UpdateEndpoint's AutoRollbackConfiguration alarms (aws-audit #4)",
    },
}
# Granted but not called, each with its reason. Anything else granted and unused fails the test.
GRANTED_UNUSED: dict[str, dict[str, str]] = {
    "*": {
        # SAM's S3ReadPolicy template: read-only bucket metadata, kept with the template.
        "s3:GetBucketLocation": "part of SAM's S3ReadPolicy template (read-only)",
        "s3:GetLifecycleConfiguration": "part of SAM's S3ReadPolicy template (read-only)",
    },
}


class _ManagedPolicies(dict):
    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    sam = copy.deepcopy(TEMPLATE)
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            resource["Properties"]["Definition"] = json.loads((ROOT / "statemachine/guardrail.asl.json").read_text())
            del resource["Properties"]["DefinitionUri"]
    sam["Globals"]["Function"]["CodeUri"] = "s3://guardrail-code/functions.zip"
    for layer in (r for r in sam["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion"):
        layer["Properties"]["ContentUri"] = "s3://guardrail-code/layer.zip"  # what `sam package` puts there
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name="us-east-1"))
    return translator.translate(sam, parameter_values={}, get_managed_policy_map=_ManagedPolicies)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(cfn: dict[str, Any], role: str) -> list[dict[str, Any]]:
    resource = cfn["Resources"][role]
    assert resource["Type"] == "AWS::IAM::Role", role
    return [s for p in resource["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def _role_of(cfn: dict[str, Any], function: str) -> str:
    role = cfn["Resources"][function]["Properties"]["Role"]
    return role["Fn::GetAtt"][0]


def _granted(cfn: dict[str, Any], role: str) -> set[str]:
    return {a for s in _statements(cfn, role) if s["Effect"] == "Allow" for a in _as_list(s["Action"])}


def _grants(cfn: dict[str, Any], role: str, action: str) -> list[dict[str, Any]]:
    return [s for s in _statements(cfn, role) if action in _as_list(s["Action"]) and s["Effect"] == "Allow"]


def _handler_module(function: str) -> str:
    return FUNCTIONS[function]["Properties"]["Handler"].rpartition(".")[0]


# --- every function: calls ⊆ policy, and nothing granted without a use -------------------------------------
@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_policy_covers_every_call_and_grants_nothing_unused(cfn, function):
    needed = iam_calls.iam_actions(_handler_module(function)) | set(EXTRA_NEEDED.get(function, {}))
    granted = _granted(cfn, _role_of(cfn, function))
    assert needed, f"{function}: no AWS calls found (the call graph is broken?)"
    missing = needed - granted
    assert not missing, f"{function} calls {sorted(missing)} but its role does not grant them"
    allowed_extra = set(GRANTED_UNUSED["*"]) | set(GRANTED_UNUSED.get(function, {}))
    unused = granted - needed - allowed_extra
    assert not unused, f"{function} is granted {sorted(unused)} but never calls them"


def test_the_call_graph_sees_the_known_calls():
    """The static reader is itself checked against calls known from aws-audit §2 (a broken reader would
    otherwise make the test above pass vacuously)."""
    assert {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"} <= iam_calls.iam_actions(
        "functions.handlers.acquire_lock"
    )
    assert "s3:GetObject" in iam_calls.iam_actions("functions.handlers.start_shadow_test")  # deployment.json
    assert {"sagemaker:UpdateEndpoint", "sagemaker:CreateEndpoint"} <= iam_calls.iam_actions(
        "functions.handlers.deploy"
    )
    assert "cloudwatch:PutMetricData" in iam_calls.iam_actions("functions.handlers.check_deployment")


# --- the roles SageMaker assumes -------------------------------------------------------------------------------
def _actions(cfn, role: str) -> set[str]:
    return _granted(cfn, role)


def test_model_role_reads_rollback_alarms_and_manages_nothing(cfn):
    """aws-audit #4: SageMaker reads the AutoRollbackConfiguration alarms with the execution role; #3: the model
    role is not widened with SageMaker API permissions (the inference container can use its credentials)."""
    actions = _actions(cfn, "SageMakerExecutionRole")
    assert "cloudwatch:DescribeAlarms" in actions
    assert not any(a.startswith("sagemaker:") for a in actions), sorted(actions)
    assert not ({"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"} & actions)


def test_ecr_pulls_are_scoped_to_the_serving_images_registry(cfn):
    """aws-audit #20: no `*` account in the repository ARN; the account is the default image's registry (the
    region mapping) or the ServingImage's own registry."""
    for role in ("SageMakerExecutionRole", "ShadowExperimentRole"):
        (pull,) = _grants(cfn, role, "ecr:BatchGetImage")
        text = json.dumps(pull["Resource"])
        assert ":*:repository" not in text and "XGBoostImageRegistry" in text and "ServingImage" in text, text


def test_shadow_experiment_role_manages_only_this_endpoint(cfn):
    """aws-audit #3: a dedicated role, trusted by SageMaker, allowed to manage this endpoint for the experiment."""
    role = cfn["Resources"]["ShadowExperimentRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    actions = _actions(cfn, "ShadowExperimentRole")
    required = {
        "sagemaker:DescribeEndpoint",
        "sagemaker:UpdateEndpoint",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DescribeModel",
        "s3:GetObject",
        "ecr:BatchGetImage",
    }
    assert required <= actions, required - actions
    for statement in _statements(cfn, "ShadowExperimentRole"):
        for action in _as_list(statement["Action"]):
            if action.startswith("sagemaker:"):
                for resource in _as_list(statement["Resource"]):
                    text = json.dumps(resource)
                    assert "endpoint/${EndpointName}" in text or any(
                        f":{kind}/*" in text for kind in ("endpoint-config", "model")
                    ), (action, text)
    # It is passed as the experiment's RoleArn, and only to SageMaker.
    (passrole,) = _grants(cfn, _role_of(cfn, "StartShadowTestFunction"), "iam:PassRole")
    assert passrole["Resource"] == {"Fn::GetAtt": ["ShadowExperimentRole", "Arn"]}
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["SHADOW_EXPERIMENT_ROLE_ARN"] == {"Fn::GetAtt": ["ShadowExperimentRole", "Arn"]}


def test_start_shadow_test_may_read_deployment_json(cfn):
    """aws-audit #2: the msprt verdict reads deployment.json (a missing one must answer 404: ListBucket)."""
    actions = _granted(cfn, _role_of(cfn, "StartShadowTestFunction"))
    assert {"s3:GetObject", "s3:ListBucket"} <= actions


@pytest.mark.parametrize("function", ["EnsureAlarmsFunction", "CheckDeploymentFunction", "DeployFunction"])
def test_describe_alarms_is_read_only_on_every_alarm_and_writes_stay_scoped(cfn, function):
    """aws-audit #14: DescribeAlarms on alarm:* (read-only); PutMetricAlarm stays on this endpoint's alarms."""
    role = _role_of(cfn, function)
    for statement in _grants(cfn, role, "cloudwatch:DescribeAlarms"):
        assert json.dumps(statement["Resource"]).endswith(':alarm:*"}'), statement
    assert _grants(cfn, role, "cloudwatch:DescribeAlarms")
    for statement in _grants(cfn, role, "cloudwatch:PutMetricAlarm"):
        assert "alarm:guardrail-${EndpointName}-*" in json.dumps(statement["Resource"])
        assert _as_list(statement["Action"]) == ["cloudwatch:PutMetricAlarm"]


def test_topic_key_grants_cloudwatch_nothing_unconditioned(cfn):
    """aws-audit #24: alarms have ActionsEnabled False, so CloudWatch needs no key access; if a statement comes
    back it must carry aws:SourceAccount."""
    policy = cfn["Resources"]["TopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    for statement in policy:
        if "cloudwatch.amazonaws.com" in json.dumps(statement.get("Principal", {})):
            assert "aws:SourceAccount" in json.dumps(statement.get("Condition", {})), statement


def test_only_deploy_may_delete_and_only_this_endpoint(cfn):
    """aws-audit #16: DeleteEndpoint exists for a Failed endpoint, on `endpoint/${EndpointName}` only."""
    holders = {
        lid: statement
        for lid, r in cfn["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        for statement in _grants(cfn, lid, "sagemaker:DeleteEndpoint")
    }
    assert set(holders) == {_role_of(cfn, "DeployFunction")}, set(holders)
    (statement,) = holders.values()
    assert _as_list(statement["Action"]) == ["sagemaker:DeleteEndpoint"]
    assert [json.dumps(r) for r in _as_list(statement["Resource"])] == [
        json.dumps({"Fn::Sub": f"{ACCOUNT_ARN}:endpoint/${{EndpointName}}"})
    ]
