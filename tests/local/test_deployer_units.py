"""The deployer's translation steps, without a cloud: samconfig, SAM -> CloudFormation, moto patches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local import deployer
from local.lambda_runtime import CODE_DIR_TAG

APP = Path(__file__).parent / "fixtures" / "app"
REPO = Path(__file__).resolve().parents[2]


def translated(app: Path = APP, params: dict[str, str] | None = None) -> tuple[dict, dict, dict]:
    sam = deployer._load_document(app / "template.yaml")
    code_dirs = deployer.prepare_sam(sam, app)
    cfn = deployer.translate(sam, params or {}, "us-east-1")
    body, after = deployer.patch_for_moto(cfn, code_dirs)
    return cfn, body, after


def test_samconfig_parameters_are_parsed_like_sam_cli(tmp_path):
    params, stack = deployer.samconfig_parameters(APP / "samconfig.toml", "local")
    assert params == {"Greeting": "hello local", "PollIntervalSeconds": "1"}
    assert stack == "guardrail-fixture"
    listed = tmp_path / "samconfig.toml"
    listed.write_text('[local.deploy.parameters]\nparameter_overrides = ["A=1", "B=x y"]\n')
    assert deployer.samconfig_parameters(listed)[0] == {"A": "1", "B": "x y"}


def test_samconfig_errors_are_clear(tmp_path):
    with pytest.raises(deployer.DeployError, match=r"no \[staging.deploy.parameters\]"):
        deployer.samconfig_parameters(APP / "samconfig.toml", "staging")
    bad = tmp_path / "samconfig.toml"
    bad.write_text('[local.deploy.parameters]\nparameter_overrides = "NoEquals"\n')
    with pytest.raises(deployer.DeployError, match="not Key=Value"):
        deployer.samconfig_parameters(bad)


def test_functions_run_from_their_code_uri_and_lose_layers():
    _, body, after = translated()
    functions = {k: r for k, r in body["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == {"ParseFunction", "FlakyFunction", "NotifyFunction", "ExtraFunction"}
    for logical_id, resource in functions.items():
        props = resource["Properties"]
        assert props["Code"] == {"ZipFile": deployer.PLACEHOLDER_CODE}
        assert "Layers" not in props
        tags = {t["Key"]: t["Value"] for t in props["Tags"]}
        assert tags[CODE_DIR_TAG] == str((APP / "handlers").resolve())
        assert tags["lambda:createdBy"] == "SAM"
        assert after["function_tags"][logical_id] == props["Tags"]


def test_state_machine_definition_and_substitutions_are_carried_as_outputs():
    cfn, body, after = translated()
    spec = after["state_machines"]["RolloutStateMachine"]
    assert set(spec["Substitutions"]) == {"ParseFunctionArn", "FlakyFunctionArn", "NotifyFunctionArn", "PollIntervalSeconds"}
    # every intrinsic became a hidden Output whose value is the original expression
    output = spec["Substitutions"]["ParseFunctionArn"]["__output__"]
    assert body["Outputs"][output]["Value"] == {"Fn::GetAtt": ["ParseFunction", "Arn"]}
    assert "DefinitionSubstitutions" not in body["Resources"]["RolloutStateMachine"]["Properties"]
    assert "DefinitionSubstitutions" in cfn["Resources"]["RolloutStateMachine"]["Properties"]
    # and resolve() puts the resolved values back
    outputs = {name: f"value-of-{name}" for name in body["Outputs"]}
    resolved = deployer._Carried.resolve(after, outputs)
    assert resolved["state_machines"]["RolloutStateMachine"]["Substitutions"]["ParseFunctionArn"] == f"value-of-{output}"


def test_bucket_properties_moto_ignores_are_kept_for_the_s3_api():
    _, _, after = translated()
    props = after["buckets"]["ModelBucket"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert deployer._notification_api_shape(props["NotificationConfiguration"]) == {"EventBridgeConfiguration": {}}


def test_notification_shape_translates_every_kind():
    cfn = {
        "EventBridgeConfiguration": {"EventBridgeEnabled": "false"},
        "QueueConfigurations": [{"Queue": "arn:q", "Event": "s3:ObjectCreated:*",
                                 "Filter": {"S3Key": {"Rules": [{"Name": "suffix", "Value": ".gz"}]}}}],
        "LambdaConfigurations": [{"Function": "arn:f", "Event": "s3:ObjectRemoved:*"}],
    }
    assert deployer._notification_api_shape(cfn) == {
        "QueueConfigurations": [{"QueueArn": "arn:q", "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".gz"}]}}}],
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": "arn:f", "Events": ["s3:ObjectRemoved:*"]}],
    }


def test_rule_keeps_the_templates_pattern_and_targets_the_state_machine():
    _, body, _ = translated()
    rule = body["Resources"]["RolloutStateMachineModelUploaded"]["Properties"]
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"wildcard": {"Fn::Sub": "${ModelPrefix}*/model.tar.gz"}}]
    assert rule["Targets"][0]["Arn"] == {"Ref": "RolloutStateMachine"}


class _FakeSfn:
    class exceptions:
        class StateMachineAlreadyExists(Exception):
            pass

    def __init__(self):
        self.created = {}

    def create_state_machine(self, name, definition, roleArn, type):
        self.created[name] = json.loads(definition)
        return {"stateMachineArn": f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"}


def test_substitutions_are_applied_and_a_missing_one_is_an_error():
    sfn = _FakeSfn()
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:s-M-1"
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${Fn}", "End": True}}})
    spec = {"Definition": definition, "Substitutions": {"Fn": "arn:fn"}, "RoleArn": "r", "Type": "STANDARD"}
    result = deployer._create_state_machine(sfn, "M", arn, spec)
    assert sfn.created["s-M-1"]["States"]["A"]["Resource"] == "arn:fn"
    assert result.arn == arn and result.substitutions == {"Fn": "arn:fn"}
    with pytest.raises(deployer.DeployError, match="no DefinitionSubstitutions for Fn"):
        deployer._create_state_machine(sfn, "M", arn, spec | {"Substitutions": {}})


def test_prepare_sam_rejects_a_missing_code_folder(tmp_path):
    sam = {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "nowhere/", "Handler": "a.b"}}}}
    with pytest.raises(deployer.DeployError, match="CodeUri 'nowhere/' is not a folder"):
        deployer.prepare_sam(sam, tmp_path)


def test_translation_errors_are_reported():
    sam = {"Transform": "AWS::Serverless-2016-10-31",
           "Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://b/k"}}}}
    with pytest.raises(deployer.DeployError, match="SAM translation failed"):
        deployer.translate(sam, {}, "us-east-1")


@pytest.mark.skipif(not (REPO / "template.yaml").exists(), reason="template.yaml not there yet")
def test_the_projects_template_translates_with_every_function_from_the_working_tree():
    cfn, body, after = translated(REPO)
    sam = deployer._load_document(REPO / "template.yaml")
    sam_functions = {k for k, r in sam["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert sam_functions, "the template declares no functions"
    assert set(after["function_tags"]) == sam_functions
    for logical_id in sam_functions:
        handler = body["Resources"][logical_id]["Properties"]["Handler"]
        module = handler.rsplit(".", 1)[0].replace(".", "/")
        assert (REPO / f"{module}.py").exists(), f"{logical_id}: {handler} is not in the working tree"
    for logical_id, spec in after["state_machines"].items():
        separator, parts = cfn["Resources"][logical_id]["Properties"]["DefinitionString"]["Fn::Join"]
        placeholders = set(deployer.SUBSTITUTION.findall(separator.join(parts)))
        assert placeholders, "the definition has no ${...} placeholders"
        assert placeholders <= set(spec["Substitutions"]), placeholders - set(spec["Substitutions"])


def test_a_conditional_resources_carried_values_share_its_condition():
    """An Output may not refer to a resource whose Condition is false: moto would fail the stack."""
    cfn = {"Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Condition": "WantsBucket", "Properties": {
            "VersioningConfiguration": {"Status": {"Ref": "Versioning"}}}},
        "Always": {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfiguration": {"Status": {"Ref": "Versioning"}}}},
    }}
    body, after = deployer.patch_for_moto(cfn, {})
    conditional = after["buckets"]["Bucket"]["VersioningConfiguration"]["Status"]["__output__"]
    always = after["buckets"]["Always"]["VersioningConfiguration"]["Status"]["__output__"]
    assert body["Outputs"][conditional] == {"Value": {"Ref": "Versioning"}, "Condition": "WantsBucket"}
    assert body["Outputs"][always] == {"Value": {"Ref": "Versioning"}}


def test_prepare_sam_drops_working_tree_layers_and_references_to_them(tmp_path):
    (tmp_path / "src").mkdir()
    sam = {
        "Resources": {
            "Deps": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "."}},
            "Published": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "s3://b/l.zip"}},
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {
                "CodeUri": "src", "Handler": "h.handler", "Runtime": "python3.13",
                "Layers": [{"Ref": "Deps"}, {"Ref": "Published"}, "arn:aws:lambda:us-east-1:1:layer:x:1"]}},
        }
    }
    deployer.prepare_sam(sam, tmp_path)
    assert set(sam["Resources"]) == {"Published", "Fn"}
    assert sam["Resources"]["Fn"]["Properties"]["Layers"] == [{"Ref": "Published"}, "arn:aws:lambda:us-east-1:1:layer:x:1"]
    deployer.translate(sam, {}, "us-east-1")  # translatable without `sam package`


def test_create_stack_is_sent_once_and_waited_for(monkeypatch):
    # moto creates every resource inside CreateStack: minutes on a loaded machine. A botocore retry after the
    # default 60 s read timeout re-sent it and failed on the stack (or a log group) the first attempt made.
    seen = {}

    class Stop(Exception):
        pass

    def fake_client(service, env, **config):
        if service == "cloudformation":
            seen.update(config)
            raise Stop
        raise AssertionError(f"unexpected client {service}")

    monkeypatch.setattr(deployer, "client", fake_client)
    with pytest.raises(Stop):
        deployer.deploy(APP / "template.yaml", {"AWS_DEFAULT_REGION": "us-east-1"})
    assert seen["retries"] == {"total_max_attempts": 1} and seen["read_timeout"] >= 600
