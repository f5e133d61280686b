"""`make aws-smoke SMOKE_ARGS=--local`: the smoke run's four scenarios end to end on the local cloud, through the
same Target abstraction the AWS run uses (guardrail/aws_smoke.py)."""

from __future__ import annotations

import pytest

from guardrail import aws_smoke

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_aws_smoke_scenarios_pass_on_the_local_cloud(target, models_dir, capsys):
    steps = aws_smoke.run_scenarios(target, models_dir)
    assert [s.name for s in steps] == list(aws_smoke.SCENARIOS)
    assert all(s.ok for s in steps), [(s.name, s.outcome, s.expected, s.problems) for s in steps]
    printed = capsys.readouterr().out
    assert all(name in printed for name in aws_smoke.SCENARIOS)
    assert aws_smoke.estimate_cost(steps, "ml.t2.medium", 1) > 0
