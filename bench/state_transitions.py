"""State transitions and Lambda invocations per execution of statemachine/guardrail.asl.json, and what they
cost on a Standard workflow ($0.025 per 1,000 transitions). Target: < $0.01 per guarded update.

The flow runs on moto's interpreter with scripted steps (tests/statemachine/sfn_harness.py). A real update
polls DescribeEndpoint for as long as SageMaker provisions, shifts and bakes, so the update is measured with
2 polls (the bare path) and with the polls a production canary takes: provisioning about 8 min, then
WaitIntervalSeconds 300 s after the canary and 300 s after the full shift, then TerminationWaitSeconds 120 s,
at PollIntervalSeconds 30 s. That is 20 min, or 40 polls. The worst case is success on the last of the
MaxPollAttempts (120) polls; each poll costs 3 transitions (Wait, CheckDeployment, Choice).

    .venv/bin/python bench/state_transitions.py
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "statemachine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sfn_steps as s
from sfn_harness import run

PRICE_PER_TRANSITION = 0.025 / 1000  # USD, Standard workflows, us-east-1
PRODUCTION_POLLS = (8 * 60 + 300 + 300 + 120) // 30  # 40
PRODUCTION = {"MaxPollAttempts": "120"}  # samconfig [default]


def update(polls: int) -> dict:
    script = s.base_script()
    script["CheckDeployment"] = [
        *(s.deployment("IN_PROGRESS", attempts=i) for i in range(1, polls)),
        s.deployment("SUCCEEDED", attempts=polls),
        s.watch(),
    ]
    return script


def shadow(polls: int) -> dict:
    script = s.base_script(shadow_enabled=True)
    script["StartShadowTest"] = s.shadow("RUNNING")
    script["CheckShadowTest"] = [
        *(s.shadow("RUNNING", attempts=i) for i in range(1, polls)),
        s.shadow("ENDED", done=True, verdict="PROMOTE", attempts=polls),
    ]
    script["ConcludeShadowTest"] = s.shadow("CONCLUDED", done=True, verdict="PROMOTE", attempts=polls)
    return script


def rejected() -> dict:
    script = s.base_script()
    script["QualityGate"] = s.error("ModelRejected", "AUC below threshold")
    return script


CASES = [
    ("guarded update, 2 polls (bare path)", update(2)),
    (f"guarded update, production canary ({PRODUCTION_POLLS} polls)", update(PRODUCTION_POLLS)),
    ("guarded update, success on the last allowed poll (120)", update(120)),
    ("shadow test, verdict at the first check after the duration", shadow(1)),
    ("shadow test, verdict after 10 more polls", shadow(11)),
    ("quality gate reject", rejected()),
]


def main() -> None:
    print(f"{'execution':64} {'outcome':10} {'transitions':>11} {'lambda calls':>12} {'cost USD':>10}")
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # it logs every failed state at ERROR
    for title, script in CASES:
        result = run(s.event(), script, substitutions=PRODUCTION | {"PollIntervalSeconds": "0"}, timeout=300)
        assert result.status in ("SUCCEEDED", "FAILED"), result.status
        outcome = (result.output or {}).get("outcome", result.error)
        cost = result.transitions * PRICE_PER_TRANSITION
        print(f"{title:64} {outcome:10} {result.transitions:>11} {len(result.fakes.calls):>12} {cost:>10.5f}")
    print(
        f"\nprice: ${PRICE_PER_TRANSITION * 1000:.3f} per 1,000 state transitions (Standard); target < $0.01 per update"
    )


if __name__ == "__main__":
    main()
