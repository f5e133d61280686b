"""The project's own template.yaml, deployed by the local cloud with samconfig's [local] parameters."""

from __future__ import annotations

import json
import time

import pytest

from local import deployer
from local.alerts import AlertStream
from local.cloud import DEFAULT_SAMCONFIG, DEFAULT_TEMPLATE, LocalCloud
from local.env import client, load_state

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("local-cloud"),
    pytest.mark.skipif(not DEFAULT_TEMPLATE.exists() or not DEFAULT_SAMCONFIG.exists(), reason="SAM app not there yet"),
]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    handle = LocalCloud.spawn(tmp_path_factory.mktemp("real"))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def translated():
    params, _ = deployer.samconfig_parameters(DEFAULT_SAMCONFIG, "local")
    sam = deployer._load_document(DEFAULT_TEMPLATE)
    deployer.prepare_sam(sam, DEFAULT_TEMPLATE.parent)
    return params, sam, deployer.translate(sam, params, "us-east-1")


def test_every_function_has_its_template_environment_resolved(cloud, translated):
    params, sam, cfn = translated
    state = load_state(cloud.workdir)
    lam = client("lambda", cloud.env)
    functions = {k for k, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert functions and functions <= set(state.resources)
    global_vars = set(sam["Globals"]["Function"]["Environment"]["Variables"])
    for logical_id in functions:
        conf = lam.get_function_configuration(FunctionName=state.resources[logical_id])
        variables = conf["Environment"]["Variables"]
        assert global_vars <= set(variables), global_vars - set(variables)
        for name, value in variables.items():
            assert "${" not in value and "{'" not in value, f"{logical_id}: {name}={value}"
        assert conf["Handler"] == cfn["Resources"][logical_id]["Properties"]["Handler"]
    some = lam.get_function_configuration(FunctionName=state.resources[sorted(functions)[0]])["Environment"]["Variables"]
    assert some["POLL_INTERVAL_SECONDS"] == params["PollIntervalSeconds"]
    assert some["MODEL_BUCKET"] == state.outputs["ModelBucketName"]


def test_state_machine_has_every_substitution_resolved(cloud, translated):
    _, _, cfn = translated
    state = load_state(cloud.workdir)
    sfn = client("stepfunctions", cloud.env)
    machines = {k for k, r in cfn["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"}
    assert machines == set(state.state_machines)
    lam = client("lambda", cloud.env)
    # Every function is a state of the machine, except those an EventBridge rule invokes (ExecutionEnded: the
    # machine's own status-change events).
    ruled = {t["Arn"]["Fn::GetAtt"][0] for r in cfn["Resources"].values() if r["Type"] == "AWS::Events::Rule"
             for t in r["Properties"].get("Targets", []) if isinstance(t.get("Arn"), dict) and "Fn::GetAtt" in t["Arn"]}
    arns = {lam.get_function_configuration(FunctionName=state.resources[k])["FunctionArn"]
            for k, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function" and k not in ruled}
    assert "ExecutionEndedFunction" in ruled
    for arn in state.state_machines.values():
        definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
        assert "${" not in definition
        text = json.dumps(json.loads(definition))
        referenced = {a for a in arns if a in text}
        assert referenced == arns, arns - referenced


def test_only_a_model_upload_starts_an_execution_which_ends_in_a_notification(cloud):
    out = cloud.outputs
    s3, sfn = client("s3", cloud.env), client("stepfunctions", cloud.env)
    arn = out["StateMachineArn"]
    s3.put_object(Bucket=out["ModelBucketName"], Key="models/probe/v1/evaluation.json", Body=b"{}")
    time.sleep(1.0)
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    # Not a tarball: the workflow must end FAILED (or REJECTED) and say so over SNS.
    s3.put_object(Bucket=out["ModelBucketName"], Key="models/probe/v1/model.tar.gz", Body=b"not a tarball")
    deadline = time.monotonic() + 20
    while not (runs := sfn.list_executions(stateMachineArn=arn)["executions"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(runs) == 1
    alert = AlertStream(cloud.env, load_state(cloud.workdir).alert_queue_url).wait_for(timeout=90)
    assert alert.outcome in ("FAILED", "REJECTED"), alert
    assert alert.subject
    assert runs[0]["name"] in json.dumps(alert.payload) or alert.model == "probe"
