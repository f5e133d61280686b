"""`guardrail invoke`: which function a state runs, which saved input it takes, the placeholders it fills (the
local-cloud run is in tests/e2e/test_cli_readme.py)."""

from __future__ import annotations

import json

import pytest

from guardrail import invoke
from guardrail.cli import main


def test_every_saved_state_input_names_a_state_with_a_function():
    functions = invoke.step_functions()
    assert functions["ParseUpload"] == "ParseUploadFunction" and functions["PreFlight"] == "PreFlightFunction"
    for path in sorted(invoke.STATES_DIR.glob("*.json")):
        state, logical = invoke.resolve_step(path.stem)
        assert invoke.default_input(state) == path and logical.endswith("Function")


@pytest.mark.parametrize("spelling", ["ParseUpload", "parse_upload", "parseupload", "ParseUploadFunction",
                                      "events/states/parse_upload.json"])
def test_a_step_is_found_however_it_is_spelled(spelling):
    assert invoke.resolve_step(spelling) == ("ParseUpload", "ParseUploadFunction")


def test_an_unknown_step_is_one_line_with_the_known_ones(capsys):
    assert main(["invoke", "ParseUplaod"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no state 'ParseUplaod'" in err[0] and "QualityGate" in err[0]


def test_placeholders_become_the_stacks_names():
    doc = json.loads((invoke.STATES_DIR / "ensure_alarms.json").read_text())
    filled = invoke.fill_placeholders(doc, "guardrail-local-modelbucket-abc", "guardrail-smoke")
    text = json.dumps(filled)
    assert "guardrail-models" not in text and "s3://guardrail-local-modelbucket-abc/models/" in text
    assert "arn:aws:s3:::guardrail-local-modelbucket-abc" in text
    assert filled["upload"]["endpoint_name"] == "guardrail-smoke"
    assert filled["upload"]["names"]["error_alarm"].startswith("guardrail-guardrail-smoke-")  # alarm prefix kept
    assert filled["upload"]["bucket"] == "guardrail-local-modelbucket-abc"
