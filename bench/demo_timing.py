"""Wall time of each demo scenario beside its floor (the configured bake, watch, alarm and poll times).

    .venv/bin/python bench/demo_timing.py [--models artifacts/models] [--trials 30] [--only KEY ...]

Starts a local cloud (time printed separately), runs the scenarios in table order with their traffic, and
prints scenario, outcome, wall seconds, floor seconds and the overhead (wall - floor). Targets: the whole
demo < 3 min with models already trained, each scenario < 30 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guardrail import scenarios
from guardrail.demo import Target, ensure_models, run_all
from guardrail.scenarios import Scenario


def floor_seconds(scenario: Scenario, p: dict[str, float]) -> float:
    """The waits the flow cannot skip for this scenario with these stack parameters."""
    poll, bake, termination = p["PollIntervalSeconds"], p["WaitIntervalSeconds"], p["TerminationWaitSeconds"]
    watch = p["PostDeploymentWatchSeconds"]
    deployment = scenario.deployment or {}
    if scenario.expected in ("REJECTED", "FAILED"):
        return 0.0  # decided before anything is created
    if scenario.expected in ("PROMOTED", "SHADOW_REJECTED", "ROLLED_BACK") or scenario.key == "first-deployment":
        # The sequential shadow verdict and the alarms can end these as soon as the evidence is there:
        # at least one Wait before the check that sees it.
        return poll
    steps = 100 // int(deployment.get("linear_step_percent", 50)) if deployment.get("strategy") == "LINEAR" else 1
    return steps * bake + termination + watch  # bake per traffic step, old fleet's termination wait, watch


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--models", type=Path, default=Path("artifacts/models"))
    args.add_argument("--trials", type=int, default=None)
    args.add_argument("--only", nargs="+")
    opts = args.parse_args(argv)

    class Quiet:
        def print(self, *a: object, **k: object) -> None:
            print(*a)

    from local.cloud import LocalCloud

    models = opts.models.resolve()
    ensure_models(models, train=True, trials=opts.trials, console=Quiet())
    t0 = time.monotonic()
    cloud = LocalCloud.spawn(Path(".guardrail/bench-demo").resolve())
    startup = time.monotonic() - t0
    try:
        assert cloud.state is not None
        target = Target.from_outputs(cloud.outputs, cloud.state.state_machines, cloud.env, cloud.state.alert_queue_url)
        stack = target.client("cloudformation").describe_stacks(StackName=cloud.state.stack_name)["Stacks"][0]
        params = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        numbers = {k: float(v) for k, v in params.items() if v.replace(".", "", 1).isdigit()}
        selected = [scenarios.get(k) for k in opts.only] if opts.only else list(scenarios.SCENARIOS)
        print(f"local cloud start: {startup:.1f} s")
        print("parameters: " + ", ".join(f"{k}={params[k]}" for k in sorted(params) if k.endswith(
            ("Seconds", "Periods", "Attempts"))))
        print(f"{'scenario':32} {'outcome':16} {'wall s':>7} {'floor s':>8} {'overhead s':>10}")
        total = 0.0
        failed = 0
        from local.alerts import AlertStream

        alerts = AlertStream(target.env or {}, target.alert_queue_url)
        for r in run_all(target, models, selected, alerts=alerts):
            floor = floor_seconds(scenarios.get(r.key), numbers)
            total += r.seconds
            failed += not r.ok
            mark = "" if r.ok else "  ✗ " + "; ".join(r.problems)[:160]
            print(f"{r.key:32} {r.actual or '-':16} {r.seconds:7.1f} {floor:8.1f} {r.seconds - floor:10.1f}{mark}",
                  flush=True)
        print(f"{'total (scenarios)':32} {'':16} {total:7.1f}")
        print(f"{'total (with cloud start)':32} {'':16} {total + startup:7.1f}")
    finally:
        cloud.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
