"""Every `guardrail ...` and `make ...` command in the README's fenced bash blocks is exercised by a test.

EXERCISED says how, per command:
- "local cloud": run as written (plus --workdir/--models/--reports) on a local cloud, by the named test;
- "parse": only its argument parsing is checked here (it needs AWS, or is the whole demo/test suite), with the
  test named beside it covering what it does where one exists;
- "make -n": a make target, dry-run here (`make -n` resolves the target and prints its recipe), with the test
  that runs what the recipe runs where one exists.
A new README command without an entry fails `test_every_readme_command_is_listed`.
"""

import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest

from guardrail.cli import cli

ROOT = Path(__file__).resolve().parents[2]
E2E = "tests/e2e/test_cli_readme.py"

EXERCISED = {
    "make demo": ("make -n", "tests/e2e/test_scenarios.py::test_first_deployment"),  # every scenario via run_scenario
    "make test": ("make -n", None),  # the suite itself
    "make validate": ("make -n", "tests/template/test_sam_cli.py::test_sam_validate_lint"),
    "make build": ("make -n", "tests/template/test_sam_cli.py::test_sam_build_packages_only_the_functions_package"),
    "guardrail demo --only first-deployment incompatible-model": (
        "parse", "tests/local/test_cli.py::test_a_subset_deploys_what_it_needs_first"),
    "guardrail demo --no-train --models artifacts/models": (
        "parse", "tests/local/test_cli.py::test_missing_models_folder_is_one_line"),
    "guardrail up &": ("local cloud", f"{E2E}::test_up_prints_a_clean_banner"),
    "guardrail replay events/first-deployment.json": ("local cloud", f"{E2E}::test_readme_replay_first_deployment"),
    "guardrail replay events/incompatible-model.json --report": (
        "local cloud", f"{E2E}::test_readme_replay_rolls_back_with_the_scenarios_traffic"),
    "guardrail status": ("local cloud", f"{E2E}::test_status_tells_the_truth"),
    "guardrail down": ("local cloud", f"{E2E}::test_readme_down"),
    'eval "$(guardrail env)"': ("local cloud", f"{E2E}::test_env_points_the_sdk_at_the_local_cloud"),
    "guardrail invoke QualityGate --key models/bank-marketing/v1/model.tar.gz": (
        "local cloud", f"{E2E}::test_readme_invoke_runs_one_step_without_docker"),
    'guardrail approve <execution> --reason "canary numbers look fine"': (
        "local cloud", "tests/e2e/test_approval_abort.py::test_approved_update_deploys_and_names_the_approver"),
    'guardrail reject <execution> --reason "not during the sale"': (
        "local cloud", "tests/e2e/test_approval_abort.py::test_rejected_update_is_not_approved_and_leaves_the_endpoint"),
    'guardrail abort guardrail-endpoint --reason "wrong training data"': (
        "local cloud", "tests/e2e/test_approval_abort.py::test_abort_mid_canary_ends_on_a_known_config"),
    "guardrail report <execution-arn-or-name> [--out report.html] [--aws]": (
        "local cloud", f"{E2E}::test_report_accepts_the_execution_name"),
}


def readme_commands() -> list[str]:
    """`guardrail`/`make` lines of the README's ```bash blocks, comments cut."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if re.match(r"(guardrail|make)\s", command + " ") or "$(guardrail " in command:
                commands.append(command)
    return commands


def test_every_readme_command_is_listed():
    assert sorted(set(readme_commands())) == sorted(EXERCISED)


@pytest.mark.parametrize("command", sorted(EXERCISED))
def test_the_named_test_exists(command):
    _, test = EXERCISED[command]
    if test is None:
        return
    path, name = test.split("::")
    assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), test


def argv_of(command: str) -> list[str]:
    """The arguments after `guardrail`, placeholders filled and optional groups taken."""
    command = re.sub(r'^eval "\$\((.*)\)"$', r"\1", command).rstrip("&").strip()
    command = command.replace("<execution-arn-or-name>", "some-execution")
    command = re.sub(r"\[([^\]]*)\]", r"\1", command)
    return shlex.split(command)[1:]


@pytest.mark.parametrize("command", [c for c in sorted(EXERCISED) if "guardrail" in c])
def test_readme_guardrail_commands_parse(command):
    name, *rest = argv_of(command)
    sub = cli.commands[name]
    sub_ctx = sub.make_context(name, rest, parent=click.Context(cli, info_name="guardrail"))  # raises on a bad option
    assert sub_ctx.command.name == name


@pytest.mark.parametrize("command", [c for c in sorted(EXERCISED) if c.startswith("make ")])
def test_readme_make_targets_exist(command):
    result = subprocess.run(["make", "-n", *command.split()[1:]], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
