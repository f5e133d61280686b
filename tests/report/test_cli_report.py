"""`guardrail report` on a real (moto) execution, through the CLI entry point."""

from guardrail.cli import main


def test_report_command_writes_the_html(rollback_execution, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", rollback_execution.arn, "--aws", "--out", str(out)]) == 0
    assert "report written to" in capsys.readouterr().out
    html = out.read_text()
    assert html.count("Plotly.newPlot") == 2 and "ROLLED_BACK" in html


def test_report_command_unknown_execution_is_a_clear_error(rollback_execution, capsys):
    assert main(["report", rollback_execution.arn + "-nope", "--aws"]) == 1
    assert "cannot read execution" in capsys.readouterr().err


def test_local_commands_need_a_running_local_cloud(tmp_path, capsys):
    assert main(["status", "--workdir", str(tmp_path)]) == 1
    assert "guardrail up" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing.json"), "--workdir", str(tmp_path)]) == 1
    assert "no such event file" in capsys.readouterr().err


def test_train_up_down_hand_their_arguments_to_their_owners(tmp_path, capsys):
    # training.cli validates its own arguments; local.cloud down finds no cloud in an empty workdir.
    assert main(["train", "--trials", "1"]) == 2
    assert main(["down", "--workdir", str(tmp_path)]) == 0
    assert "no local cloud running" in capsys.readouterr().out
