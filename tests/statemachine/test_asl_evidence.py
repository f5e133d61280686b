"""Issue 11 §3 on the state machine: an update whose new fleet served too few requests never ends DEPLOYED
silently. The watch's `evidence_action` (functions.steps.evidence) routes: ROLLBACK -> Rollback -> ROLLED_BACK,
EXTEND -> another watch window, ACCEPT -> DEPLOYED_UNVERIFIED."""

from __future__ import annotations

import sfn_steps as s
from sfn_harness import Execution, run


def execute(script: dict) -> Execution:
    result = run(s.event(), script)
    assert result.fakes.problems == [], result.fakes.problems
    return result


def watched(action: str, served: int, extensions: int = 0) -> dict:
    return s.watch() | {
        "evidence": {
            "new_fleet_requests": served,
            "old_fleet_requests": 400,
            "min_requests": 100,
            "policy": {"ROLLBACK": "rollback", "EXTEND": "extend", "ACCEPT": "accept", "OK": "rollback"}[action],
            "since": "2026-11-23T12:00:00Z",
            "until": "2026-11-23T12:01:00Z",
            "sufficient": served >= 100,
        },
        "evidence_action": action,
        "extensions": extensions,
    }


def succeeded_then(*watches: dict) -> dict:
    script = s.base_script()
    script["CheckDeployment"] = [s.deployment("SUCCEEDED", attempts=1), *watches]
    script["Rollback"] = s.watch(rolled_back=True) | {"settled": True, "endpoint_status": "InService"}
    return script


def test_too_few_requests_roll_back():
    result = execute(succeeded_then(watched("ROLLBACK", 0)))
    assert result.status == "SUCCEEDED"
    assert [n.outcome for n in result.notifications] == ["ROLLED_BACK"]
    assert result.states[result.states.index("WatchVerdict") + 1 :][:3] == ["Rollback", "RollbackSettled", "RolledBack"]
    assert result.fakes.calls_to("Rollback")[0]["watch"]["evidence"]["new_fleet_requests"] == 0


def test_extend_watches_again_and_deploys_once_the_evidence_is_there():
    result = execute(succeeded_then(watched("EXTEND", 30, extensions=1), watched("OK", 130, extensions=1)))
    assert [n.outcome for n in result.notifications] == ["DEPLOYED"]
    assert result.states.count("WatchAfterDeployment") == 2 and "Rollback" not in result.states
    # the second watch gets the first one's extensions (it bounds them)
    assert result.fakes.calls_to("CheckDeployment")[-1]["watch"]["extensions"] == 1


def test_extend_then_still_too_few_rolls_back():
    result = execute(succeeded_then(watched("EXTEND", 3, extensions=1), watched("ROLLBACK", 5, extensions=1)))
    assert [n.outcome for n in result.notifications] == ["ROLLED_BACK"]
    assert result.states.count("WatchAfterDeployment") == 2


def test_accept_ends_deployed_unverified():
    result = execute(succeeded_then(watched("ACCEPT", 7)))
    assert [n.outcome for n in result.notifications] == ["DEPLOYED_UNVERIFIED"]
    assert "DeployedUnverified" in result.states and "Rollback" not in result.states


def test_enough_requests_deploy():
    result = execute(succeeded_then(watched("OK", 500)))
    assert [n.outcome for n in result.notifications] == ["DEPLOYED"]
