"""Issue 12 §4 in the state machine: an upload that is not at the head of its endpoint's queue waits its turn
(WaitForTurn, not the bounded lock backoff), and a superseded one ends SUPERSEDED, notified, before any step that
touches SageMaker."""

from __future__ import annotations

import sfn_steps as s
from test_asl_branches import assert_ended, execute

NEWER = {"execution": "exec-3", "key": "models/bank-marketing/v3/model.tar.gz", "event_time": "2026-11-29T12:00:10Z"}


def queued(position: int = 1) -> dict:
    return s.lock() | {
        "acquired": False, "queued": True, "position": position, "wait_seconds": 0,
        "reason": "waits its turn behind exec-0 (models/bank-marketing/v1/model.tar.gz)",
    }  # fmt: skip


def superseded() -> dict:
    return s.lock() | {
        "acquired": False, "superseded": True, "superseded_by": NEWER,
        "reason": f"a newer upload {NEWER['key']} (execution exec-3) supersedes it (supersede: true)",
    }  # fmt: skip


def test_a_queued_upload_waits_its_turn_without_using_the_lock_retries():
    script = s.base_script()
    # More turns in the queue than LockMaxAttempts (3 in the harness): waiting one's turn is not a busy lock.
    script["AcquireLock"] = [queued(2), queued(1), queued(1), queued(1), queued(1), s.lock()]
    result = execute(script)
    assert_ended(result, "DEPLOYED")
    assert result.states.count("WaitForTurn") == 5 and "WaitForLock" not in result.states
    assert len(result.fakes.calls_to("AcquireLock")) == 6 and "lock_retry" not in result.output


def test_a_superseded_upload_is_notified_and_touches_nothing():
    script = s.base_script()
    script["AcquireLock"] = [queued(1), superseded()]
    result = execute(script)
    assert_ended(result, "SUPERSEDED")
    for step in ("QualityGate", "PreFlight", "CreateModel", "Deploy"):
        assert result.fakes.calls_to(step) == []
    [doc] = result.fakes.calls_to("Notify")
    assert doc["error"]["Error"] == "Superseded" and NEWER["key"] in doc["error"]["Cause"]
    # ReleaseLock still runs: it takes the execution out of the queue (and holds no lock)
    [release] = result.fakes.calls_to("ReleaseLock")
    assert release["lock"]["superseded"] is True
