"""`guardrail status` (issue 11 §3): each execution's outcome word, DEPLOYED_UNVERIFIED as its own, and the
per-fleet request counts the SNS alerts carry (functions/steps/notify.py `_served`). No cloud: Step Functions
and SageMaker answers are given."""

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from guardrail import cli as cli_module
from guardrail.demo import EndpointView

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:guardrail"
T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
EVIDENCE = {"new_fleet_requests": 3, "old_fleet_requests": 412, "min_requests": 50, "policy": "accept",
            "since": T0.isoformat(), "until": T0.isoformat(), "sufficient": False}
DOCS = {
    "unverified": {"outcome": "DEPLOYED_UNVERIFIED", "watch": {"alarm": False, "evidence": EVIDENCE,
                                                               "evidence_action": "ACCEPT"}},
    "no-evidence": {"outcome": "ROLLED_BACK", "watch": {"alarm": False, "evidence_action": "ROLLBACK",
                                                        "evidence": {**EVIDENCE, "new_fleet_requests": 0,
                                                                     "old_fleet_requests": 0,
                                                                     "policy": "rollback"}}},
    "shadow": {"outcome": "PROMOTED", "shadow": {"analysis": {"verdict": "PROMOTE",
                                                              "production": {"variant": "AllTraffic",
                                                                             "invocations": 4800.0},
                                                              "shadow": {"variant": "Shadow",
                                                                         "invocations": 4790.0}}}},
    "first": {"outcome": "DEPLOYED"},
}


class FakeSfn:
    def list_executions(self, stateMachineArn, maxResults):
        return {"executions": [
            {"executionArn": f"{MACHINE.replace('stateMachine', 'execution')}:{name}", "status": "SUCCEEDED",
             "startDate": T0 - timedelta(minutes=i)} for i, name in enumerate(DOCS)]}

    def describe_execution(self, executionArn):
        return {"status": "SUCCEEDED", "output": json.dumps(DOCS[executionArn.rsplit(":", 1)[-1]])}


def test_fleet_counts_are_the_ones_the_alerts_carry():
    assert cli_module.fleet_counts(DOCS["unverified"]) == "new fleet 3, old fleet 412 requests (min 50)"
    assert cli_module.fleet_counts(DOCS["shadow"]) == "production 4800, shadow 4790 requests"
    assert cli_module.fleet_counts(DOCS["first"]) is None


def test_an_unverified_deployment_is_its_own_outcome_and_counts_as_the_last_update():
    rows = cli_module.execution_rows(FakeSfn(), MACHINE, 10)
    assert [r["outcome"] for r in rows] == ["DEPLOYED_UNVERIFIED", "ROLLED_BACK", "PROMOTED", "DEPLOYED"]
    assert rows[0]["served"] == "new fleet 3, old fleet 412 requests (min 50)"
    assert rows[1]["served"] == "new fleet 0, old fleet 0 requests (min 50)"
    # The endpoint's FailureReason is older than an unverified deployment, as it is older than a DEPLOYED one.
    assert cli_module.failure_label(rows).startswith("failure reason (a previous update; the last one, 12:00:00 UTC, "
                                                     "was DEPLOYED_UNVERIFIED)")


def test_status_prints_the_outcome_word_and_the_counts(monkeypatch):
    class Target:
        endpoint_name, state_machine_arn = "ep", MACHINE

        def client(self, service):
            return {"stepfunctions": FakeSfn(), "sagemaker": object(), "cloudwatch": object()}[service]

    monkeypatch.setattr(cli_module, "_target", lambda opts: Target())
    monkeypatch.setattr("guardrail.demo.endpoint_view", lambda sm, name: EndpointView())
    monkeypatch.setattr("guardrail.demo.alarm_states", lambda cw, name: {})
    result = CliRunner().invoke(cli_module.cli, ["status"], terminal_width=200)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if ":unverified" in x)
    assert "DEPLOYED_UNVERIFIED" in line and "new fleet 3, old fleet 412 requests (min 50)" in line
    assert "production 4800, shadow 4790 requests" in result.output
