"""Deploy the SAM template itself into the local cloud.

SAM -> CloudFormation with aws-sam-translator, then moto's CloudFormation creates what it can.
Where moto falls short, the gap is filled from the translated template, never from a second
hand-written resource list:
- Lambda code runs from the working tree: each function gets an inline placeholder zip and a tag
  with its CodeUri folder, which `local.lambda_runtime` reads; Layers are dropped (the venv has them);
  moto's CloudFormation drops a function's Tags, so they are applied through the Lambda API.
- moto's CloudFormation ignores a bucket's VersioningConfiguration and NotificationConfiguration
  (the EventBridge switch): they are applied through the S3 API.
- moto's CloudFormation neither applies DefinitionSubstitutions nor puts state machines where the
  executing interpreter sees them: each state machine is created again through the Step Functions
  API, same name (so same ARN as the rule targets), substitutions resolved.
Intrinsic functions (Ref, GetAtt, Sub...) are resolved by moto itself: every value the deployer needs
is added to the stack as a hidden Output and read back after creation, then removed from the stack (moto
runs in this process), so `describe-stacks` and `get-template` show the template's own Outputs, as after
`sam deploy`.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import boto3
from pydantic import BaseModel

from local.env import client
from local.lambda_runtime import CODE_DIR_TAG

log = logging.getLogger(__name__)

PLACEHOLDER_CODE = "# Guardrail local cloud: this function runs from the working tree (local.lambda_runtime).\n"
PLACEHOLDER_CODE_URI = "s3://guardrail-local-code/{}.zip"
HIDDEN_OUTPUT = "GuardrailLocal"  # prefix of the Outputs the deployer adds for itself
BUCKET_PROPERTIES_MOTO_IGNORES = ("VersioningConfiguration", "NotificationConfiguration")
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")


class DeployError(RuntimeError):
    pass


class StateMachineDeployment(BaseModel):
    logical_id: str
    arn: str
    name: str
    substitutions: dict[str, str]


class Deployment(BaseModel):
    """What a deployed stack is made of, as the local cloud and its clients need it."""

    stack_name: str
    stack_id: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    resource_types: dict[str, str]  # logical id -> CloudFormation type
    functions: dict[str, str]  # logical id -> function name
    state_machines: dict[str, StateMachineDeployment]
    topics: list[str]  # SNS topic ARNs

    def of_type(self, cfn_type: str) -> dict[str, str]:
        return {lid: self.resources[lid] for lid, t in self.resource_types.items() if t == cfn_type}


# -- parameters -------------------------------------------------------------------------------------


def samconfig_parameters(samconfig: Path, config_env: str = "local") -> tuple[dict[str, str], str | None]:
    """`parameter_overrides` and `stack_name` of `[<env>.deploy.parameters]` in samconfig.toml."""
    data = tomllib.loads(samconfig.read_text())
    section = data.get(config_env, {}).get("deploy", {}).get("parameters", {})
    if not section:
        raise DeployError(f"{samconfig}: no [{config_env}.deploy.parameters] section")
    raw = section.get("parameter_overrides", [])
    items = shlex.split(raw) if isinstance(raw, str) else [str(i) for i in raw]
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeployError(f"{samconfig}: parameter override {item!r} is not Key=Value")
        params[key] = value
    return params, section.get("stack_name")


# -- SAM -> CloudFormation --------------------------------------------------------------------------


def _load_document(path: Path) -> Any:
    from samtranslator.yaml_helper import yaml_parse

    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml_parse(text)


def _is_local_path(uri: Any) -> bool:
    return isinstance(uri, str) and not uri.startswith("s3://")


def prepare_sam(sam: dict[str, Any], base_dir: Path) -> dict[str, Path]:
    """Make the SAM template translatable without `sam package`; returns function logical id -> code dir."""
    global_code_uri = sam.get("Globals", {}).get("Function", {}).get("CodeUri")
    code_dirs: dict[str, Path] = {}
    # Layers built from the working tree (`sam build` runs their Makefile target) are the venv's packages here:
    # the resource goes, and so do the functions' references to it (function Layers are dropped anyway).
    resources = sam.get("Resources", {})
    local_layers = {
        logical_id for logical_id, r in resources.items()
        if r.get("Type") == "AWS::Serverless::LayerVersion" and _is_local_path(r.get("Properties", {}).get("ContentUri"))
    }
    for logical_id in local_layers:
        del resources[logical_id]
    for resource in resources.values():
        layers = resource.get("Properties", {}).get("Layers")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(layers, list):
            resource["Properties"]["Layers"] = [
                layer for layer in layers if not (isinstance(layer, dict) and layer.get("Ref") in local_layers)
            ]
    for logical_id, resource in sam.get("Resources", {}).items():
        props = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "InlineCode" not in props:
            code_uri = props.get("CodeUri", global_code_uri)
            if code_uri is None:
                raise DeployError(f"{logical_id}: no CodeUri (neither on the function nor in Globals)")
            if _is_local_path(code_uri):
                code_dir = (base_dir / code_uri).resolve()
                if not code_dir.is_dir():
                    raise DeployError(f"{logical_id}: CodeUri {code_uri!r} is not a folder under {base_dir}")
                code_dirs[logical_id] = code_dir
                props["CodeUri"] = PLACEHOLDER_CODE_URI.format(logical_id)
        elif resource.get("Type") == "AWS::Serverless::StateMachine" and _is_local_path(props.get("DefinitionUri")):
            definition_path = base_dir / props.pop("DefinitionUri")
            if not definition_path.is_file():
                raise DeployError(f"{logical_id}: DefinitionUri {definition_path} not found")
            props["Definition"] = _load_document(definition_path)
    return code_dirs


def translate(sam: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        return translator.translate(
            copy.deepcopy(sam),
            parameter_values=dict(parameters),
            # Managed policy names -> ARNs without asking IAM (local IAM enforces nothing).
            get_managed_policy_map=_ManagedPolicyArns,
        )
    except InvalidDocumentException as exc:
        reasons = "; ".join(str(cause) for cause in exc.causes)
        raise DeployError(f"SAM translation failed: {reasons}") from exc


class _ManagedPolicyArns(dict):  # type: ignore[type-arg]
    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"


# -- what moto's CloudFormation cannot do, recorded and carried through hidden Outputs ---------------


class _Carried:
    """Values to resolve by moto: each intrinsic leaf becomes a hidden Output, then is put back."""

    def __init__(self) -> None:
        self.outputs: dict[str, Any] = {}

    def carry(self, value: Any, condition: str | None = None) -> Any:
        """`condition`: the resource's Condition (an Output cannot refer to a resource that was not created)."""
        if isinstance(value, dict) and len(value) == 1 and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
            name = f"{HIDDEN_OUTPUT}{len(self.outputs)}"
            self.outputs[name] = {"Value": value} | ({"Condition": condition} if condition else {})
            return {"__output__": name}
        if isinstance(value, dict):
            return {k: self.carry(v, condition) for k, v in value.items()}
        if isinstance(value, list):
            return [self.carry(v, condition) for v in value]
        return value

    @staticmethod
    def resolve(value: Any, outputs: dict[str, str]) -> Any:
        if isinstance(value, dict) and set(value) == {"__output__"}:
            return outputs[value["__output__"]]
        if isinstance(value, dict):
            return {k: _Carried.resolve(v, outputs) for k, v in value.items()}
        if isinstance(value, list):
            return [_Carried.resolve(v, outputs) for v in value]
        return value


def patch_for_moto(cfn: dict[str, Any], code_dirs: dict[str, Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (template moto can create, carried values to apply after creation)."""
    cfn = copy.deepcopy(cfn)
    carried = _Carried()
    after: dict[str, Any] = {"buckets": {}, "state_machines": {}, "function_tags": {}}
    for logical_id, resource in cfn["Resources"].items():
        rtype = resource["Type"]
        props = resource.setdefault("Properties", {})
        condition = resource.get("Condition")
        if rtype == "AWS::Lambda::Function" and logical_id in code_dirs:
            props["Code"] = {"ZipFile": PLACEHOLDER_CODE}
            props.pop("Layers", None)
            variables = props.get("Environment", {}).get("Variables", {})
            for name, value in variables.items():  # Lambda variables are strings; moto keeps a Number Ref an int
                variables[name] = {"Fn::Join": ["", [value]]} if isinstance(value, dict) else str(value)
            tags = [t for t in props.get("Tags", []) if t.get("Key") != CODE_DIR_TAG]
            props["Tags"] = [*tags, {"Key": CODE_DIR_TAG, "Value": str(code_dirs[logical_id])}]
            after["function_tags"][logical_id] = carried.carry(props["Tags"], condition)  # moto's CFN drops Tags
        elif rtype == "AWS::S3::Bucket":
            ignored = {k: props[k] for k in BUCKET_PROPERTIES_MOTO_IGNORES if k in props}
            if ignored:
                after["buckets"][logical_id] = carried.carry(ignored, condition)
        elif rtype == "AWS::StepFunctions::StateMachine":
            if "DefinitionS3Location" in props:
                raise DeployError(f"{logical_id}: DefinitionS3Location is not supported locally; use DefinitionUri")
            definition = props.get("DefinitionString", props.get("Definition"))
            if definition is None:
                raise DeployError(f"{logical_id}: no Definition")
            if isinstance(definition, dict) and not any(k == "Ref" or k.startswith("Fn::") for k in definition):
                definition = json.dumps(definition)  # `Definition` given as an object
            after["state_machines"][logical_id] = carried.carry(
                {
                    "Definition": definition,
                    "Substitutions": props.pop("DefinitionSubstitutions", {}),
                    "RoleArn": props.get("RoleArn", ""),
                    "Type": props.get("StateMachineType", "STANDARD"),
                },
                condition,
            )
    cfn.setdefault("Outputs", {}).update(carried.outputs)
    return cfn, after


# -- deploy -----------------------------------------------------------------------------------------


def deploy(
    template: Path,
    env: dict[str, str],
    samconfig: Path | None = None,
    config_env: str = "local",
    overrides: dict[str, str] | None = None,
    stack_name: str | None = None,
) -> Deployment:
    """Deploy `template` (a SAM template) into the local cloud that `env` points at."""
    template = Path(template).resolve()
    region = env["AWS_DEFAULT_REGION"]
    parameters: dict[str, str] = {}
    configured_stack = None
    if samconfig is not None:
        parameters, configured_stack = samconfig_parameters(Path(samconfig), config_env)
    parameters |= {k: str(v) for k, v in (overrides or {}).items()}
    stack_name = stack_name or configured_stack or "guardrail"

    sam = _load_document(template)
    declared = set(sam.get("Parameters", {}))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise DeployError(f"parameters not declared in {template.name}: {', '.join(unknown)}")
    code_dirs = prepare_sam(sam, template.parent)
    cfn = translate(sam, parameters, region)
    body, after = patch_for_moto(cfn, code_dirs)

    # One attempt, a long read timeout: moto creates the whole stack inside CreateStack, which takes minutes on a
    # loaded machine; a retry after the default 60 s timeout found its own stack (AlreadyExists) or log group.
    cloudformation = client("cloudformation", env, retries={"total_max_attempts": 1}, read_timeout=900)
    try:
        created = cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except cloudformation.exceptions.AlreadyExistsException as exc:
        raise DeployError(f"stack {stack_name} already exists in this local cloud") from exc
    stack = cloudformation.describe_stacks(StackName=created["StackId"])["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cloudformation.describe_stack_events(StackName=created["StackId"])["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events if "FAILED" in e["ResourceStatus"]]
        raise DeployError(f"stack {stack_name} is {stack['StackStatus']}: {reasons}")

    all_outputs = {o["OutputKey"]: str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])}
    _hide_outputs(stack["StackId"], region)
    summaries = [s for s in _stack_resources(cloudformation, stack_name) if s["LogicalResourceId"]]
    resources = {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries}
    created_only = {kind: {lid: v for lid, v in items.items() if lid in resources} for kind, items in after.items()}
    resolved = _Carried.resolve(created_only, all_outputs)
    types = {s["LogicalResourceId"]: s["ResourceType"] for s in summaries}
    missing = sorted(set(cfn["Resources"]) - set(resources))
    if missing:
        log.warning("not created (condition false, or no moto support): %s", ", ".join(f"{m} ({cfn['Resources'][m]['Type']})" for m in missing))

    lambda_ = client("lambda", env)
    for logical_id, tags in resolved["function_tags"].items():
        arn = lambda_.get_function(FunctionName=resources[logical_id])["Configuration"]["FunctionArn"]
        lambda_.tag_resource(Resource=arn, Tags={t["Key"]: str(t["Value"]) for t in tags})
    for logical_id, props in resolved["buckets"].items():
        _apply_bucket_properties(client("s3", env), resources[logical_id], props)
    state_machines = {
        logical_id: _create_state_machine(client("stepfunctions", env), logical_id, resources[logical_id], spec)
        for logical_id, spec in resolved["state_machines"].items()
    }
    functions = {lid: resources[lid] for lid, t in types.items() if t == "AWS::Lambda::Function"}
    return Deployment(
        stack_name=stack_name,
        stack_id=stack["StackId"],
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        outputs={k: v for k, v in all_outputs.items() if not k.startswith(HIDDEN_OUTPUT)},
        resources=resources,
        resource_types=types,
        functions=functions,
        state_machines=state_machines,
        topics=[resources[lid] for lid, t in types.items() if t == "AWS::SNS::Topic"],
    )


def _hide_outputs(stack_id: str, region: str) -> None:
    """Drop the deployer's Outputs from the created stack, in moto's backend (no API removes an Output without
    an UpdateStack, which would leave the stack UPDATE_COMPLETE): resources are untouched."""
    from moto.cloudformation.models import cloudformation_backends

    account = stack_id.split(":")[4]
    try:
        stack = cloudformation_backends[account][region].stacks[stack_id]
    except KeyError:
        raise DeployError(f"stack {stack_id} is not in this process's moto: the deployer runs in the local cloud") from None
    template = dict(stack.template_dict)
    template["Outputs"] = {k: v for k, v in (template.get("Outputs") or {}).items() if not k.startswith(HIDDEN_OUTPUT)}
    stack.template = json.dumps(template)
    stack._parse_template()
    stack.output_map = stack._create_output_map()


def _stack_resources(cloudformation: Any, stack_name: str) -> list[dict[str, Any]]:
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    return [s for page in pages for s in page["StackResourceSummaries"]]


def _apply_bucket_properties(s3: Any, bucket: str, props: dict[str, Any]) -> None:
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]})
    if "NotificationConfiguration" in props:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=_notification_api_shape(props["NotificationConfiguration"])
        )


def _notification_api_shape(cfn: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration -> PutBucketNotificationConfiguration's."""
    shape: dict[str, Any] = {}
    if str(cfn.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled", "false")).lower() == "true":
        shape["EventBridgeConfiguration"] = {}
    for cfn_key, api_key, arn_key in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function"),
        ("QueueConfigurations", "QueueConfigurations", "Queue"),
        ("TopicConfigurations", "TopicConfigurations", "Topic"),
    ):
        configs = []
        for item in cfn.get(cfn_key, []):
            api_arn_key = "LambdaFunctionArn" if arn_key == "Function" else f"{arn_key}Arn"
            config: dict[str, Any] = {api_arn_key: item[arn_key], "Events": [item["Event"]]}
            rules = item.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                config["Filter"] = {"Key": {"FilterRules": rules}}
            configs.append(config)
        if configs:
            shape[api_key] = configs
    return shape


def _create_state_machine(sfn: Any, logical_id: str, physical_arn: str, spec: dict[str, Any]) -> StateMachineDeployment:
    substitutions = {k: str(v) for k, v in spec["Substitutions"].items()}
    definition = spec["Definition"]
    if not isinstance(definition, str):
        raise DeployError(f"{logical_id}: definition did not resolve to a string")

    def substitute(match: re.Match[str]) -> str:
        return substitutions.get(match.group(1), match.group(0))

    definition = SUBSTITUTION.sub(substitute, definition)
    unresolved = sorted(set(SUBSTITUTION.findall(definition)))
    if unresolved:
        raise DeployError(f"{logical_id}: no DefinitionSubstitutions for {', '.join(unresolved)}")
    name = physical_arn.rsplit(":", 1)[-1]
    try:
        created = sfn.create_state_machine(name=name, definition=definition, roleArn=spec["RoleArn"], type=spec["Type"])
        arn = created["stateMachineArn"]
    except sfn.exceptions.StateMachineAlreadyExists:
        arn = physical_arn
        sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=spec["RoleArn"])
    if arn != physical_arn:
        raise DeployError(f"{logical_id}: state machine ARN {arn} differs from the stack's {physical_arn}")
    return StateMachineDeployment(logical_id=logical_id, arn=arn, name=name, substitutions=substitutions)
