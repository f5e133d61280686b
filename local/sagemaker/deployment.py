"""Blue/green UpdateEndpoint under deployment guardrails: traffic steps, baking, alarm-driven rollback.

Traffic moves by capacity as on AWS: a canary of k of the new fleet's n instances takes k/n of the requests.
Every bake polls the rollback alarms' states (set by the alarm evaluator) with DescribeAlarms.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from local.sagemaker import iam as sm_iam
from local.sagemaker.errors import ValidationException
from local.sagemaker.fleet import Fleet
from local.sagemaker.state import Endpoint, Host

ROLLBACK_REASON = "One or more configured alarm for automatic rollback deployment is in ALARM state: [{}]."
TIMEOUT_REASON = (
    "The deployment exceeded the maximum execution timeout of {} seconds (MaximumExecutionTimeoutInSeconds) "
    "and was rolled back."
)
# Not AWS's text (AWS documents the permission, not what happens without it): the emulator rolls back, the safer of
# the plausible behaviours, so a missing cloudwatch:DescribeAlarms can never let an update through unguarded.
ALARMS_UNREADABLE_REASON = (
    "The execution role {} could not read the auto-rollback alarms ({}); the deployment was rolled back. Ensure that "
    "your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action on the auto-rollback "
    "alarms you specify.")
clock = time.monotonic  # module-level so a test can run the deployment on a faster clock
DEFAULT_POLICY = {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}


@dataclass
class Step:
    share: float  # fraction of requests that go to the new (green) fleet
    instances: int  # green instances carrying traffic
    bake: float
    bake_field: str  # which setting the bake comes from, as StatusMessage names it
    capacity: str  # "canary", "full", "" (linear steps)


def _instances(size: dict[str, Any], total: int) -> int:
    if size["Type"] == "INSTANCE_COUNT":
        return int(size["Value"])
    return max(1, math.floor(total * size["Value"] / 100))


def validate_policy(policy: dict[str, Any], total: int) -> None:
    """The server-side ranges AWS documents for canary and linear sizes."""
    routing = policy["TrafficRoutingConfiguration"]
    kind = routing["Type"]
    if kind == "CANARY":
        size = routing.get("CanarySize")
        if size is None:
            raise ValidationException("CanarySize must be specified for traffic routing type CANARY.")
        pct = size["Value"] if size["Type"] == "CAPACITY_PERCENT" else 100 * size["Value"] / total
        if pct > 50:
            raise ValidationException(
                f"CanarySize {size['Value']} ({size['Type']}) must be less than or equal to 50% of the "
                f"new fleet's capacity of {total} instance(s).")
    elif kind == "LINEAR":
        size = routing.get("LinearStepSize")
        if size is None:
            raise ValidationException("LinearStepSize must be specified for traffic routing type LINEAR.")
        pct = size["Value"] if size["Type"] == "CAPACITY_PERCENT" else 100 * size["Value"] / total
        if not 10 <= pct <= 50:
            raise ValidationException(
                f"LinearStepSize {size['Value']} ({size['Type']}) must be between 10% and 50% of the new "
                f"fleet's capacity of {total} instance(s).")


def plan(policy: dict[str, Any], total: int) -> list[Step]:
    routing = policy["TrafficRoutingConfiguration"]
    wait = routing["WaitIntervalInSeconds"]
    final = Step(1.0, total, policy.get("TerminationWaitInSeconds", 0), "TerminationWaitInSeconds", "full")
    kind = routing["Type"]
    if kind == "CANARY":
        k = min(_instances(routing["CanarySize"], total), total)
        return [Step(k / total, k, wait, "WaitIntervalInSeconds", "canary"), final]
    if kind == "LINEAR":
        k = max(1, _instances(routing["LinearStepSize"], total))
        return [Step(i / total, i, wait, "WaitIntervalInSeconds", "") for i in range(k, total, k)] + [final]
    return [Step(1.0, total, wait, "WaitIntervalInSeconds", "full"), final]


def bake_message(step: Step) -> str:
    capacity = f"{step.capacity} capacity of " if step.capacity else ""
    return (f"Baking for {step.bake:g} seconds ({step.bake_field}) with traffic enabled on "
            f"{capacity}{step.instances} instance(s).")


def run_update(backend: Host, ep: Endpoint, green: Fleet, deployment_config: dict[str, Any] | None) -> None:
    """Runs in its own thread from UpdateEndpoint's acceptance to InService (new config or rolled back)."""
    dc = deployment_config or {}
    policy = dc.get("BlueGreenUpdatePolicy") or DEFAULT_POLICY
    alarms = [a["AlarmName"] for a in (dc.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
    timeout = policy.get("MaximumExecutionTimeoutInSeconds")
    role = backend.execution_role(green.config_name)
    started = clock()

    ep.green, ep.green_share = green, 0.0
    for step in plan(policy, green.instance_count):
        ep.set_pending_status("ActivatingTraffic", f"Activating traffic on {step.instances} instance(s).",
                              step.instances)
        ep.green_share = step.share
        ep.set_pending_status("Baking", bake_message(step), step.instances)
        end = clock() + step.bake
        while True:
            try:
                in_alarm = backend.alarms_in_alarm(alarms, role)
            except sm_iam.Denied as exc:  # assumption (AWS is silent): an unreadable guard is a tripped guard
                return ep.roll_back(ALARMS_UNREADABLE_REASON.format(role, exc))
            if in_alarm:
                return ep.roll_back(ROLLBACK_REASON.format(", ".join(in_alarm)))
            if timeout is not None and clock() - started > timeout:
                return ep.roll_back(TIMEOUT_REASON.format(timeout))
            remaining = end - clock()
            if remaining <= 0:
                break
            if backend.stopping.wait(min(backend.alarm_poll_interval, remaining)):
                return None
    ep.finish_update(green)
    return None
