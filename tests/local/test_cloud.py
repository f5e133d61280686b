"""The whole local cloud in a child process, with the fixture SAM app deployed in it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from local import deployer
from local.alerts import AlertStream
from local.cloud import LocalCloud
from local.env import client, load_state
from local.lambda_runtime import CODE_DIR_TAG

APP = Path(__file__).parent / "fixtures" / "app"
HANDLERS = Path(__file__).parent / "fixtures" / "handlers"

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children of children too), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cloud")
    handle = LocalCloud.spawn(workdir, template=APP / "template.yaml", samconfig=APP / "samconfig.toml",
                              parameter_overrides={"PollIntervalSeconds": "2"})
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def cfn():
    sam = deployer._load_document(APP / "template.yaml")
    deployer.prepare_sam(sam, APP)
    return deployer.translate(sam, {}, "us-east-1")


def executions(env, arn):
    return client("stepfunctions", env).list_executions(stateMachineArn=arn)["executions"]


def test_cloud_json_describes_the_running_cloud(cloud):
    state = load_state(cloud.workdir)
    assert state.pid == cloud.pid
    assert state.moto_url == cloud.env["AWS_ENDPOINT_URL"]
    assert state.sagemaker_url == cloud.env["AWS_ENDPOINT_URL_SAGEMAKER"] == cloud.env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"]
    assert state.moto_port != state.sagemaker_port
    assert state.stack_name == "guardrail-fixture"
    assert set(cloud.outputs) == {"ModelBucketName", "AlertTopicArn", "StateMachineArn", "LockTableName"}
    assert state.alert_queue_url
    # the SageMaker emulator answers on its port
    assert client("sagemaker", cloud.env).list_endpoints()["Endpoints"] == []


def test_describe_stacks_shows_the_templates_outputs_only(cloud):
    # The deployer's own Outputs (values moto resolves for it, local/deployer.py) are removed once read back:
    # `aws cloudformation describe-stacks` and get-template show what `sam deploy` would (issue 14 §7).
    cfn_client = client("cloudformation", cloud.env)
    stack = cfn_client.describe_stacks(StackName="guardrail-fixture")["Stacks"][0]
    assert {o["OutputKey"] for o in stack["Outputs"]} == set(cloud.outputs)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    body = cfn_client.get_template(StackName="guardrail-fixture")["TemplateBody"]
    assert deployer.HIDDEN_OUTPUT not in (body if isinstance(body, str) else json.dumps(body))


def test_every_translated_resource_exists(cloud, cfn):
    env = cloud.env
    resources = load_state(cloud.workdir).resources
    # everything but the function whose Condition is false (its Tags were carried under that Condition)
    assert set(resources) == set(cfn["Resources"]) - {"ExtraFunction", "ExtraFunctionRole"}
    out = cloud.outputs

    s3 = client("s3", env)
    bucket = out["ModelBucketName"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket=bucket)

    topic = client("sns", env).get_topic_attributes(TopicArn=out["AlertTopicArn"])["Attributes"]
    assert topic["TopicArn"] == out["AlertTopicArn"]
    table = client("dynamodb", env).describe_table(TableName=out["LockTableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]

    events = client("events", env)
    rule = events.describe_rule(Name=resources["RolloutStateMachineModelUploaded"])
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [bucket]
    assert pattern["detail"]["object"]["key"] == [{"wildcard": "models/*/model.tar.gz"}]
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert [t["Arn"] for t in targets] == [out["StateMachineArn"]]

    lam = client("lambda", env)
    parse = lam.get_function_configuration(FunctionName=resources["ParseFunction"])
    assert parse["Handler"] == "steps.parse"
    assert (parse["Timeout"], parse["MemorySize"]) == (10, 256)
    assert parse["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "guardrail",
        "TOPIC_ARN": out["AlertTopicArn"],
        "GREETING": "hello local",  # samconfig [local] override
        "TABLE_NAME": out["LockTableName"],
        "BUCKET": bucket,
    }
    for logical_id in ("FlakyFunction", "NotifyFunction"):
        assert lam.get_function_configuration(FunctionName=resources[logical_id])["Handler"].startswith("steps.")

    sfn = client("stepfunctions", env)
    machine = sfn.describe_state_machine(stateMachineArn=out["StateMachineArn"])
    assert "${" not in machine["definition"]
    definition = json.loads(machine["definition"])
    flaky = lam.get_function_configuration(FunctionName=resources["FlakyFunction"])
    assert definition["States"]["Flaky"]["Resource"] == flaky["FunctionArn"]
    assert definition["States"]["Parse"]["Parameters"]["FunctionName"] == parse["FunctionArn"]


def test_model_upload_starts_an_execution_that_retries_on_the_error_name(cloud):
    env, out = cloud.env, cloud.outputs
    s3 = client("s3", env)
    arn = out["StateMachineArn"]
    before = {e["executionArn"] for e in executions(env, arn)}
    s3.put_object(Bucket=out["ModelBucketName"], Key="models/x/v1/evaluation.json", Body=b"{}")
    s3.put_object(Bucket=out["ModelBucketName"], Key="models/x/v1/deployment.json", Body=b"{}")
    time.sleep(1.0)
    assert {e["executionArn"] for e in executions(env, arn)} == before, "only model.tar.gz may start an execution"

    s3.put_object(Bucket=out["ModelBucketName"], Key="models/x/v1/model.tar.gz", Body=b"artifact")
    started = wait_until(lambda: [e for e in executions(env, arn) if e["executionArn"] not in before], 10)
    assert len(started) == 1
    sfn = client("stepfunctions", env)
    done = wait_until(lambda: (d := sfn.describe_execution(executionArn=started[0]["executionArn"]))["status"] != "RUNNING" and d, 60)
    assert done["status"] == "SUCCEEDED", done
    event = json.loads(done["input"])
    assert event["detail-type"] == "Object Created" and event["source"] == "aws.s3"
    assert event["detail"]["object"]["key"] == "models/x/v1/model.tar.gz"
    assert event["time"].endswith("Z")
    output = json.loads(done["output"])
    assert output["upload"]["r"]["greeting"] == "hello local"
    assert output["flaky"] == {"attempts": 2}  # failed once with EndpointNotReady, retried by name
    history = sfn.get_execution_history(executionArn=done["executionArn"])["events"]
    failures = [e["lambdaFunctionFailedEventDetails"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert [f["error"] for f in failures] == ["EndpointNotReady"]


def test_notification_reaches_the_alert_stream(cloud):
    env = cloud.env
    stream = AlertStream(env)
    # the execution of the previous test published DEPLOYED; publish one more directly too
    client("sns", env).publish(
        TopicArn=cloud.outputs["AlertTopicArn"],
        Subject="Guardrail: ROLLED_BACK",
        Message='Rolled back.\n{"outcome": "ROLLED_BACK", "endpoint": "e", "model": "m", "alarm": "a"}',
        MessageAttributes={"outcome": {"DataType": "String", "StringValue": "ROLLED_BACK"}},
    )
    alerts = list(stream.poll(timeout=5))
    by_outcome = {a.outcome: a for a in alerts}
    assert "ROLLED_BACK" in by_outcome
    rolled = by_outcome["ROLLED_BACK"]
    assert rolled.subject == "Guardrail: ROLLED_BACK"
    assert rolled.endpoint == "e" and rolled.model == "m"
    assert rolled.payload == {"outcome": "ROLLED_BACK", "endpoint": "e", "model": "m", "alarm": "a"}
    assert rolled.topic_arn == cloud.outputs["AlertTopicArn"]


def test_direct_lambda_invoke_from_a_client(cloud):
    lam = client("lambda", cloud.env)
    name = load_state(cloud.workdir).resources["ParseFunction"]
    bad = lam.invoke(FunctionName=name, Payload=json.dumps({"detail": {"object": {"key": "models/x/v1/evaluation.json"}}}))
    assert bad["FunctionError"] == "Unhandled"
    assert json.load(bad["Payload"])["errorType"] == "InvalidTrigger"


def test_workers_die_with_a_killed_cloud(tmp_path):
    handle = LocalCloud.spawn(tmp_path, template=None)  # nothing deployed: one function made by hand
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client("iam", handle.env).create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    lam = client("lambda", handle.env)
    lam.create_function(
        FunctionName="echo", Runtime="python3.13", Role=role["Arn"], Handler="app.echo",
        Code={"ZipFile": _zip()}, Tags={CODE_DIR_TAG: str(HANDLERS)},
    )
    reply = lam.invoke(FunctionName="echo", Payload=b'{"hello": 1}')
    assert json.load(reply["Payload"])["event"] == {"hello": 1}
    workers = descendants(handle.pid)
    assert workers
    os.kill(handle.pid, signal.SIGKILL)
    handle.proc.wait()
    wait_until(lambda: not any(alive(p) for p in workers), 10)
    assert LocalCloud.down(tmp_path) is False  # a stale cloud.json is cleaned up
    assert not (tmp_path / "cloud.json").exists()


def test_down_stops_the_cloud_and_leaves_no_process_behind(cloud):
    """Last in this module: it stops the module's cloud."""
    lam = client("lambda", cloud.env)
    resources = load_state(cloud.workdir).resources
    for logical_id in ("ParseFunction", "NotifyFunction"):
        lam.invoke(FunctionName=resources[logical_id], Payload=b'{"detail": {"object": {"key": "k"}}}')
    workers = descendants(cloud.pid)
    assert len(workers) >= 2, "warm Lambda workers should be running"
    assert LocalCloud.down(cloud.workdir) is True
    wait_until(lambda: cloud.proc.poll() is not None, 30)
    assert cloud.proc.returncode == 0
    wait_until(lambda: not any(alive(p) for p in workers), 10)
    assert not (cloud.workdir / "cloud.json").exists()
    assert LocalCloud.down(cloud.workdir) is False



def test_a_spawned_cloud_stops_when_its_parent_dies(tmp_path):
    """A killed test run must not leave a cloud holding ports and CPU."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom local.cloud import LocalCloud\n"
         f"h = LocalCloud.spawn({str(tmp_path)!r}, template=None)\nprint(h.pid, flush=True)\ntime.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        cloud_pid = int(parent.stdout.readline())
        assert alive(cloud_pid)
    finally:
        parent.kill()
        parent.wait()
    wait_until(lambda: not alive(cloud_pid), 30)
    assert not (tmp_path / "cloud.json").exists()  # it stopped cleanly, not killed
