"""The README's CLI examples on one local cloud started by `guardrail up` itself (the entry point, in a child
process), in the README's order: up, env, replay first-deployment, replay incompatible-model --report (with the
scenario's traffic), status, report by name, demo --only quality-gate-below-threshold (attached to this cloud), down.

Each command runs as written in the README plus `--workdir` (this module's cloud), `--models` (the e2e models)
and `--reports` (a temporary folder). This module does not use the session cloud of tests/e2e/conftest.py.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guardrail import scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]  # the cloud starts inside the first test

ROOT = Path(__file__).resolve().parents[2]
GUARDRAIL = str(Path(sys.executable).parent / "guardrail")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """`guardrail up` on free ports; its stdout (the banner) is kept."""
    workdir = tmp_path_factory.mktemp("up")
    out_path = workdir.parent / f"{workdir.name}-stdout.txt"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([GUARDRAIL, "up", "--workdir", str(workdir), "--moto-port", "0",
                                 "--sagemaker-port", "0", "--parent-pid", str(os.getpid())],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 360  # minutes on a loaded 2-core machine
    while "Next:" not in out_path.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert "Next:" in out_path.read_text(), out_path.read_text()
        yield {"proc": proc, "workdir": workdir, "banner": out_path.read_text(), "executions": {}}
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def guardrail(*args, env=None, timeout=240):
    return subprocess.run([GUARDRAIL, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_up_prints_a_clean_banner(up):
    banner = up["banner"]
    state_machine = re.search(r"state machine\s+(arn:aws:states:\S+:stateMachine:\S+)", banner)
    assert state_machine and re.search(r"bucket\s+\S+modelbucket", banner, re.I)
    assert "endpoint       guardrail-endpoint" in banner
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in banner and 'eval "$(guardrail env --workdir' in banner
    assert "Next: guardrail replay events/first-deployment.json" in banner
    # Expected local gaps said once, in plain words; no log lines, no Python warnings.
    assert banner.count("Not created locally (expected") == 1 and "ModelBucketPolicy" in banner
    for noise in ("botocore.credentials", "WARNING", "UserWarning", "site-packages", "INFO"):
        assert noise not in banner, noise
    assert "Traceback" not in banner


def test_env_points_the_sdk_at_the_local_cloud(up):
    workdir = up["workdir"]
    script = (f'eval "$({GUARDRAIL} env --workdir {workdir})" && {sys.executable} -c '
              '"import boto3; print(sorted(b[\'Name\'] for b in boto3.client(\'s3\').list_buckets()[\'Buckets\']))"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    bucket = re.search(r"bucket\s+(\S+)", up["banner"]).group(1)
    assert bucket in result.stdout


def test_replay_refuses_what_it_cannot_do_yet_in_one_line(up, models_dir):
    where = ["--workdir", str(up["workdir"])]
    result = guardrail("replay", "events/incompatible-model.json", *where, "--models", str(models_dir))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "guardrail: incompatible-model needs endpoint guardrail-endpoint in service (it updates it) and there is "
        "none yet: `guardrail replay events/first-deployment.json` first"]
    result = guardrail("replay", "events/first-deployment.json", *where, "--models", "/nowhere")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "/nowhere/xgb-best lacks evaluation.json, model.tar.gz: train first" in result.stderr


def test_readme_replay_first_deployment(up, models_dir):
    result = guardrail("replay", "events/first-deployment.json", "--workdir", str(up["workdir"]),
                       "--models", str(models_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "outcome DEPLOYED" in result.stdout
    states = re.findall(r"^\s+\d+\.\ds\s+state (\w+)$", result.stdout, re.M)
    assert states[0] in ("ParseUpload", "AcquireLock") and "Deploy" in states and states[-1] in ("Done", "ReleaseLock")


def test_readme_replay_rolls_back_with_the_scenarios_traffic(up, models_dir, tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    result = guardrail("replay", "events/incompatible-model.json", "--report", "--workdir", str(up["workdir"]),
                       "--models", str(models_dir), "--reports", str(reports))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "traffic 20 req/s to guardrail-endpoint" in out
    assert "outcome ROLLED_BACK" in out and (reports / "incompatible-model.html").is_file()
    answered, failed = map(int, re.search(r"requests answered (\d+), failed (\d+)", out).groups())
    assert answered > 0 and failed > 0  # the canary answered 5XX to part of the traffic
    assert "state WaitForDeployment" in out or "state CheckDeployment" in out
    up["executions"]["rollback"] = re.search(r"^execution (arn:aws:states:\S+)$", out, re.M).group(1)
    # A FAILED outcome for status to show with its error name.
    result = guardrail("replay", "events/bad-input-malformed-event.json", "--workdir", str(up["workdir"]))
    assert result.returncode == 0 and "outcome FAILED (InvalidTrigger)" in result.stdout


def test_status_tells_the_truth(up):
    # FORCE_COLOR: rich writes colours as on a terminal; ARNs and AWS text must still come out whole.
    result = guardrail("status", "--workdir", str(up["workdir"]), env={"FORCE_COLOR": "1", "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    raw, text = result.stdout, ANSI.sub("", result.stdout)
    arn = up["executions"]["rollback"]
    assert arn in raw  # plain: not cut, not half-coloured by the highlighter
    assert re.search(r"ROLLED_BACK\s+" + re.escape(arn), text)
    assert "FAILED (InvalidTrigger)" in text
    # The FailureReason keeps its [alarm-name] (rich markup used to eat it) and says whose it is.
    v3 = f"{scenarios.MODEL_NAME}-v3-cfg"
    assert re.search(r"failure reason \(last update, rolled back\).*ALARM state: \[guardrail-\S*" + v3, text)
    # Only the live config's alarms (v1); the rolled-back v3's are counted, not listed.
    alarm_rows = [line for line in text.splitlines() if re.search(r"\b(OK|ALARM|INSUFFICIENT_DATA)\s*│?\s*$", line)]
    assert alarm_rows and all(f"{scenarios.MODEL_NAME}-v1-cfg" in row for row in alarm_rows)
    assert "of retired configs not shown: --all-alarms" in text


def test_report_accepts_the_execution_name(up, tmp_path):
    name = up["executions"]["rollback"].rsplit(":", 1)[-1]
    out = tmp_path / "by-name.html"
    result = guardrail("report", name, "--workdir", str(up["workdir"]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "ROLLED_BACK" in out.read_text()


def test_readme_invoke_runs_one_step_without_docker(up):
    # events/states/quality_gate.json as it is: the stack's bucket and endpoint in place of the placeholders, the
    # upload the first deployment made (its S3 identity, its upload document from the deployed ParseUpload).
    key = f"models/{scenarios.MODEL_NAME}/v1/model.tar.gz"
    result = guardrail("invoke", "QualityGate", "--key", key, "--workdir", str(up["workdir"]))
    assert result.returncode == 0, result.stderr
    gate = json.loads(result.stdout)
    assert gate["passed"] is True, gate
    result = guardrail("invoke", "Notify", "--workdir", str(up["workdir"]))  # events/states/notify.json as it is
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outcome"] == "DEPLOYED"
    # The step's own saved input names an upload that is not in the bucket: the function's error, in one line.
    result = guardrail("invoke", "preflight", "--workdir", str(up["workdir"]))
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("guardrail: PreFlight (") and "ArtifactNotFound" in lines[0], lines
    # A state input given to replay points at this command.
    result = guardrail("replay", "events/states/deploy.json", "--workdir", str(up["workdir"]))
    assert result.returncode == 1 and "guardrail invoke" in result.stderr


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_readme_aws_cli_lambda_invoke_and_logs(up):
    # As events/README.md shows them: the AWS CLI pointed at the local cloud by `guardrail env`, the function's
    # deployed name from CloudFormation, a saved state input as it is, then its log group.
    script = f"""set -e
eval "$({GUARDRAIL} env --workdir {up["workdir"]})"
fn=$(aws cloudformation list-stack-resources --stack-name guardrail-local --output text \
     --query "StackResourceSummaries[?LogicalResourceId=='NotifyFunction'].PhysicalResourceId")
aws lambda invoke --function-name "$fn" --payload fileb://events/states/notify.json {up["workdir"]}/out.json
cat {up["workdir"]}/out.json; echo
aws logs filter-log-events --log-group-name "/aws/lambda/$fn" --query 'events[].message' --output text
aws --endpoint-url "$AWS_ENDPOINT_URL" cloudformation describe-stacks --stack-name guardrail-local \
     --query 'Stacks[0].Outputs[].OutputKey' --output text
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"StatusCode": 200' in result.stdout and "FunctionError" not in result.stdout
    assert '"message_id"' in result.stdout and '"outcome": "DEPLOYED"' in result.stdout
    assert "START RequestId:" in result.stdout and "END RequestId:" in result.stdout  # the invocation's log lines
    assert "GuardrailLocal" not in result.stdout and "StateMachineArn" in result.stdout  # no deployer outputs


def test_demo_subset_is_checked_against_what_ran_before(up, models_dir, tmp_path):
    # `demo --only` on this cloud (--attach), where v1 serves: a rejected upload must leave v1 serving (the whole
    # table would have v5 there, which the checks used to demand: "serving ... (expected only ...-v5)").
    result = guardrail("demo", "--attach", "--workdir", str(up["workdir"]), "--only", "quality-gate-below-threshold",
                       "--no-train", "--models", str(models_dir), "--reports", str(tmp_path), timeout=280)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "all 1 scenarios as expected" in result.stdout and "setup for" not in result.stdout
    assert (tmp_path / "quality-gate-below-threshold.html").is_file()


def test_readme_down(up):
    result = guardrail("down", "--workdir", str(up["workdir"]))
    assert result.returncode == 0 and result.stdout.strip() == "stopped"
    up["proc"].wait(timeout=60)
    assert not (up["workdir"] / "cloud.json").exists()
