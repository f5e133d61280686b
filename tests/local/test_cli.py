"""`guardrail` without a running cloud: one-line errors, conventions (help, --version, --profile/--region), status
helpers, the subset planner. The commands that need a local cloud are in tests/e2e/test_cli_readme.py."""

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from guardrail import cli as cli_module
from guardrail import scenarios
from guardrail.cli import cli, main

ROOT = Path(__file__).resolve().parents[2]


def run(argv, env=None):
    """The real entry point in a child process (fresh boto3 sessions, the environment it is given)."""
    return subprocess.run([sys.executable, "-m", "guardrail.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


def no_aws_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    return env


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture
def stale(tmp_path):
    """cloud.json of a cloud that is gone: its pid is dead, its ports closed."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "cloud.json").write_text(json.dumps({
        "pid": proc.pid, "region": "us-east-1", "moto_port": port, "sagemaker_port": port,
        "moto_url": f"http://127.0.0.1:{port}", "sagemaker_url": f"http://127.0.0.1:{port}",
        "stack_name": "guardrail-local", "log_dir": str(tmp_path / "logs"),
        "outputs": {"ModelBucketName": "b", "StateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:m",
                    "EndpointName": "e"},
    }))
    return tmp_path


# ---------------------------------------------------------------- §1 errors are one line with the fix


@pytest.mark.parametrize("command", [["status"], ["env"], ["report", "some-execution"],
                                     ["replay", "events/first-deployment.json"]])
def test_a_stale_cloud_json_is_one_line_with_the_fix(stale, command, capsys):
    assert main([*command, "--workdir", str(stale)]) == 1
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert "is not running" in line and "guardrail up" in line and f"guardrail down --workdir {stale}" in line


def test_aws_without_region_or_credentials_is_one_line(tmp_path):
    env = no_aws_env(tmp_path)
    result = run(["status", "--aws"], env)
    assert result.returncode == 1
    assert one_line(result.stderr) == 'guardrail: You must specify a region: --region, AWS_REGION, or "aws configure".'
    result = run(["replay", "events/first-deployment.json", "--aws", "--region", "eu-west-1"], env)
    assert result.returncode == 1
    assert "Unable to locate credentials" in one_line(result.stderr)
    result = run(["report", "arn:aws:states:eu-west-1:1:execution:m:x", "--region", "eu-west-1"], env)
    assert result.returncode == 1 and "Unable to locate credentials" in one_line(result.stderr)
    result = run(["status", "--profile", "nobody"], env)
    assert result.returncode == 1 and "The config profile (nobody) could not be found" in one_line(result.stderr)


def test_debug_shows_the_traceback(tmp_path):
    result = run(["--debug", "status", "--aws"], no_aws_env(tmp_path))
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "NoRegionError" in result.stderr


def test_unknown_scenario_is_refused_with_the_known_names():
    result = CliRunner().invoke(cli, ["demo", "--only", "no-such-scenario"])
    assert result.exit_code == 2
    assert "unknown scenario 'no-such-scenario'; known: first-deployment" in result.output
    assert "Traceback" not in result.output
    # The README's spelling: more names after --only.
    result = CliRunner().invoke(cli, ["demo", "--only", "first-deployment", "nope"])
    assert result.exit_code == 2 and "unknown scenario 'nope'" in result.output


def test_missing_models_folder_is_one_line(tmp_path, capsys):
    assert main(["demo", "--no-train", "--models", str(tmp_path / "nowhere"), "--workdir", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "lacks" in one_line(out) and "guardrail train --out" in out


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["up", "--workdir", str(tmp_path), "--moto-port", str(port)]) == 1
    line = one_line(capsys.readouterr().err)
    assert f"port {port} is in use" in line and "guardrail down" in line and "--moto-port" in line
    assert not (tmp_path / "cloud.json").exists()


@pytest.mark.parametrize(("content", "message"), [
    ('{"not": "an event"}', "is not an EventBridge event: missing key `detail`"),
    ("not json", "is not valid JSON: Expecting value at line 1, column 1"),
    ("[1, 2]", "a JSON object is needed, not list"),
])
def test_a_malformed_event_file_is_one_line_without_python_reprs(tmp_path, content, message, capsys):
    path = tmp_path / "event.json"
    path.write_text(content)
    assert main(["replay", str(path), "--workdir", str(tmp_path)]) == 1
    line = one_line(capsys.readouterr().err)
    assert message in line and "Error(" not in line


def test_a_state_input_is_refused_with_the_one_step_command(tmp_path, capsys):
    assert main(["replay", str(ROOT / "events/states/deploy.json"), "--workdir", str(tmp_path)]) == 1
    line = one_line(capsys.readouterr().err)
    assert "is a state input" in line and "`guardrail invoke Deploy " in line and "events/README.md" in line


def test_unexpected_errors_are_one_line_too(monkeypatch, tmp_path, capsys):
    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli_module, "local_state", boom)
    assert main(["status", "--workdir", str(tmp_path)]) == 1
    line = one_line(capsys.readouterr().err)
    assert "unexpected ZeroDivisionError: division by zero" in line and "--debug" in line


# ---------------------------------------------------------------- §2 conventions


def test_version_and_help_on_every_option():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == "guardrail, version 0.1.0"
    missing = []
    for name, command in cli.commands.items():
        if name == "train":  # its options are training.cli's (`guardrail train --help`)
            continue
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{name} {param.opts[0]}")
        assert command.help, name
    assert missing == []
    up_help = CliRunner().invoke(cli, ["up", "--help"]).output
    assert "--moto-port" in up_help and "parent-pid" not in up_help


def test_profile_and_region_wherever_aws_is():
    for name, command in cli.commands.items():
        opts = {o for p in command.params for o in getattr(p, "opts", [])}
        if "--aws" in opts:
            assert {"--profile", "--region", "--stack-name"} <= opts, name
    assert {"status", "replay", "report"} <= {n for n, c in cli.commands.items()
                                              if "--aws" in {o for p in c.params for o in p.opts}}


def test_train_still_hands_its_arguments_to_training_cli(capsys):
    assert main(["train", "--trials", "1"]) == 2


def test_env_prints_the_exports_of_a_running_cloud(monkeypatch, tmp_path):
    from local.env import CloudState

    state = CloudState(pid=1, region="eu-west-1", moto_port=1, sagemaker_port=2, moto_url="http://127.0.0.1:1",
                       sagemaker_url="http://127.0.0.1:2", log_dir="x")
    monkeypatch.setattr(cli_module, "local_state", lambda workdir: state)
    out = CliRunner().invoke(cli, ["env"]).output
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:1\n" in out
    assert "export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:2\n" in out
    assert "export AWS_REGION=eu-west-1\n" in out and 'eval "$(guardrail env)"' in out
    assert CliRunner().invoke(cli, ["env", "--unset"]).output.startswith("unset AWS_ENDPOINT_URL ")


# ---------------------------------------------------------------- §3 status and report helpers


def test_report_accepts_an_execution_name():
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:guardrail-local-guardrail"
    assert cli_module.execution_arn("run-1", machine) == \
        "arn:aws:states:us-east-1:123456789012:execution:guardrail-local-guardrail:run-1"
    assert cli_module.execution_arn("arn:aws:states:x", machine) == "arn:aws:states:x"


def test_only_the_live_configs_alarms():
    alarms = {
        "guardrail-ep-bank-marketing-v1-cfg-5xx-rate": "OK",
        "guardrail-ep-bank-marketing-v1-cfg-model-latency": "OK",
        "guardrail-ep-bank-marketing-v11-cfg-5xx-rate": "OK",  # v1 is a prefix of v11: not the same config
        "guardrail-ep-bank-marketing-v2-cfg-5xx-rate": "ALARM",
    }
    assert cli_module.live_alarms(alarms, {"bank-marketing-v1-cfg", ""}) == {
        "guardrail-ep-bank-marketing-v1-cfg-5xx-rate": "OK", "guardrail-ep-bank-marketing-v1-cfg-model-latency": "OK"}
    assert set(cli_module.live_alarms(alarms, {"bank-marketing-v1-cfg", "bank-marketing-v2-cfg"})) == {
        "guardrail-ep-bank-marketing-v1-cfg-5xx-rate", "guardrail-ep-bank-marketing-v1-cfg-model-latency",
        "guardrail-ep-bank-marketing-v2-cfg-5xx-rate"}


def test_failure_reason_is_labelled_by_the_last_update():
    t = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    rolled_back = {"started": t, "outcome": "ROLLED_BACK"}
    deployed = {"started": t, "outcome": "DEPLOYED"}
    rejected = {"started": t, "outcome": "REJECTED"}
    assert cli_module.failure_label([rejected, rolled_back, deployed]) == "failure reason (last update, rolled back)"
    assert cli_module.failure_label([rejected, deployed, rolled_back]) == \
        "failure reason (a previous update; the last one, 12:00:00 UTC, was DEPLOYED)"


# ---------------------------------------------------------------- issue 11 §5 subsets


def keys(steps):
    return [(s.key, setup) for s, setup in steps]


def test_a_subset_deploys_what_it_needs_first():
    get = scenarios.get
    # The README's example: first-deployment creates what the rollback needs, no setup.
    assert keys(scenarios_plan([get("incompatible-model"), get("first-deployment")], False)) == [
        ("first-deployment", None), ("incompatible-model", None)]
    # Alone, the rollback first needs an endpoint to roll back to.
    assert keys(scenarios_plan([get("incompatible-model")], False)) == [
        ("first-deployment", "incompatible-model"), ("incompatible-model", None)]
    assert keys(scenarios_plan([get("incompatible-model")], True)) == [("incompatible-model", None)]
    assert keys(scenarios_plan([get("shadow-reject"), get("slow-model")], False)) == [
        ("first-deployment", "slow-model"), ("slow-model", None), ("shadow-reject", None)]
    # Rejections and bad input need nothing.
    assert keys(scenarios_plan([get("quality-gate-biased")], False)) == [("quality-gate-biased", None)]
    # The whole table needs no setup.
    assert all(setup is None for _, setup in scenarios_plan(list(scenarios.SCENARIOS), False))


def scenarios_plan(selected, has_endpoint):
    from guardrail.demo import plan

    return plan(selected, has_endpoint)


def test_checks_compare_with_what_served_before_not_with_the_whole_table():
    from guardrail.demo import ScenarioResult, check

    s = scenarios.get("quality-gate-below-threshold")  # the table says v5 serves afterwards
    result = ScenarioResult(key=s.key, title=s.title, expected=s.expected, actual="REJECTED",
                            alert_outcome="REJECTED", serving_before=None, serving_after={})
    assert check(result, s, {}) == []  # alone on a fresh cloud: no endpoint before, none after
    v1 = scenarios.model_name("v1")
    result.serving_before, result.serving_after = v1, {v1: 10}
    assert check(result, s, {}) == []
    result.serving_after = {scenarios.model_name("v7"): 10}
    assert check(result, s, {}) == [f"serving {{'{scenarios.model_name('v7')}': 10}} afterwards (expected only {v1})"]
    # An endpoint-changing scenario must serve its own model.
    up = scenarios.get("successful-update")
    done = ScenarioResult(key=up.key, title=up.title, expected="DEPLOYED", actual="DEPLOYED", alert_outcome="DEPLOYED",
                          serving_before=v1, serving_after={v1: 10})
    assert check(done, up, {}) == [f"serving {{'{v1}': 10}} afterwards (expected only {scenarios.model_name('v2')})"]


def test_messages_cite_files_the_repo_has():
    text = (ROOT / "guardrail" / "demo.py").read_text() + (ROOT / "guardrail" / "scenarios.py").read_text() + \
        (ROOT / "guardrail" / "cli.py").read_text()
    assert "DESIGN.md" not in text
    for cited in ("README.md", "guardrail/scenarios.py", "events/README.md"):
        assert (ROOT / cited).is_file()


def test_a_cloud_that_fails_to_start_is_one_line_with_the_log(monkeypatch, tmp_path, capsys):
    import logging

    from local.cloud import LocalCloud

    def fail(self, on_ready=None, parent_pid=None):
        raise RuntimeError("stack guardrail-local is ROLLBACK_COMPLETE")

    monkeypatch.setattr(LocalCloud, "foreground", fail)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        assert main(["up", "--workdir", str(tmp_path), "--moto-port", "0", "--sagemaker-port", "0"]) == 1
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    line = one_line(capsys.readouterr().err)
    assert line == (f"guardrail: the local cloud did not start: RuntimeError: stack guardrail-local is ROLLBACK_COMPLETE "
                    f"(the traceback is in {tmp_path / 'up.log'})")
    assert "Traceback" in (tmp_path / "up.log").read_text()


def test_demo_attach_looks_where_guardrail_up_writes(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--attach", "--only", "first-deployment"]) == 1
    assert one_line(capsys.readouterr().err) == \
        "guardrail: no local cloud state at .guardrail/cloud.json: start one with `guardrail up`"
