"""UpdateEndpoint under deployment guardrails: blue/green traffic steps or rolling batches, baking, rollback.

Traffic moves by capacity as on AWS: a canary of k of the new fleet's n instances takes k/n of the requests; during
a rolling update old and new instances serve side by side, each fleet in proportion to its instances in service.
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


def _bake(backend: Host, alarms: list[str], role: str | None, seconds: float, started: float,
          timeout: int | None) -> str | None:
    """Watch the alarms for `seconds`: the rollback's FailureReason, STOPPED, or None when the bake passed."""
    end = clock() + seconds
    while True:
        try:
            in_alarm = backend.alarms_in_alarm(alarms, role)
        except sm_iam.Denied as exc:  # assumption (AWS is silent): an unreadable guard is a tripped guard
            return ALARMS_UNREADABLE_REASON.format(role, exc)
        if in_alarm:
            return ROLLBACK_REASON.format(", ".join(in_alarm))
        if timeout is not None and clock() - started > timeout:
            return TIMEOUT_REASON.format(timeout)
        remaining = end - clock()
        if remaining <= 0:
            return None
        if backend.stopping.wait(min(backend.alarm_poll_interval, remaining)):
            return STOPPED


STOPPED = "emulator stopping"


def run_update(backend: Host, ep: Endpoint, green: Fleet, deployment_config: dict[str, Any] | None) -> None:
    """Runs in its own thread from UpdateEndpoint's acceptance to InService (new config or rolled back)."""
    dc = deployment_config or {}
    if dc.get("RollingUpdatePolicy"):
        return run_rolling(backend, ep, green, dc)
    policy = dc.get("BlueGreenUpdatePolicy") or DEFAULT_POLICY
    alarms = _alarm_names(dc)
    timeout = policy.get("MaximumExecutionTimeoutInSeconds")
    role = backend.execution_role(green.config_name)
    started = clock()

    ep.green, ep.green_share = green, 0.0
    for step in plan(policy, green.instance_count):
        ep.set_pending_status("ActivatingTraffic", f"Activating traffic on {step.instances} instance(s).",
                              step.instances)
        ep.green_share = step.share
        ep.set_pending_status("Baking", bake_message(step), step.instances)
        reason = _bake(backend, alarms, role, step.bake, started, timeout)
        if reason == STOPPED:
            return None
        if reason is not None:
            return ep.roll_back(reason)
    ep.finish_update(green)
    return None


def _alarm_names(dc: dict[str, Any]) -> list[str]:
    return [a["AlarmName"] for a in (dc.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]


# --- rolling deployments ---------------------------------------------------------------------------------------
# "Use rolling deployments" (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-rolling.html):
# 1. provision the first batch of the new fleet, 2. shift a portion of traffic to it, 3. after the baking period,
# if no alarm tripped, clean up a batch of old instances, 4. repeat until done. "If an alarm is tripped during one
# of the baking periods, then traffic is rolled back to the old fleet in batches of a size that you specify";
# without RollbackMaximumBatchSize "the default value will be set to 100% of total capacity which means to bring up
# the whole capacity of the old fleet at once during rollback" (API_RollingUpdatePolicy).


def batch_instances(size: dict[str, Any], total: int) -> int:
    """Instances in one batch: INSTANCE_COUNT as given, CAPACITY_PERCENT of `total` rounded down (AWS's sample:
    "33% of whole fleet capacity (33% * 3 = 1 instance)"), at least one."""
    if size["Type"] == "INSTANCE_COUNT":
        return max(1, int(size["Value"]))
    return max(1, math.floor(total * size["Value"] / 100))


def rolling_plan(batch: int, old_total: int, new_total: int) -> list[tuple[int, int]]:
    """(new, old) instances in service while each batch bakes; a batch of old instances goes after each bake."""
    steps, new, old = [], 0, old_total
    while new < new_total:
        new = min(new + batch, new_total)
        steps.append((new, old))
        old = max(old - batch, 0)
    return steps


def rollback_plan(new: int, old: int, old_total: int, batch: int | None) -> list[tuple[int, int]]:
    """(new, old) after each rollback batch: a batch of old instances comes back, then a batch of new ones goes.
    `batch` None = the whole old fleet at once."""
    batch = batch or old_total
    steps: list[tuple[int, int]] = []
    while new > 0 or old < old_total:
        old, new = min(old + batch, old_total), max(new - batch, 0)
        steps.append((new, old))
    return steps


def validate_rolling(policy: dict[str, Any], total: int) -> None:
    """API_RollingUpdatePolicy: MaximumBatchSize "Value must be between 5% to 50% of the variant's total instance
    count". RollbackMaximumBatchSize has no documented range; over 100 % of the fleet is refused (our choice)."""
    size = policy["MaximumBatchSize"]
    pct = size["Value"] if size["Type"] == "CAPACITY_PERCENT" else 100 * size["Value"] / total
    if not 5 <= pct <= 50:
        raise ValidationException(
            f"MaximumBatchSize {size['Value']} ({size['Type']}) must be between 5% and 50% of the variant's total "
            f"instance count of {total}.")
    back = policy.get("RollbackMaximumBatchSize")
    if back and back["Type"] == "CAPACITY_PERCENT" and back["Value"] > 100:
        raise ValidationException(
            f"RollbackMaximumBatchSize {back['Value']} (CAPACITY_PERCENT) must be at most 100% of the fleet.")


def run_rolling(backend: Host, ep: Endpoint, green: Fleet, dc: dict[str, Any]) -> None:
    """Replace the old fleet's instances in batches, in place; roll back in batches on an alarm or the timeout."""
    policy = dc["RollingUpdatePolicy"]
    alarms, timeout = _alarm_names(dc), policy.get("MaximumExecutionTimeoutInSeconds")
    role = backend.execution_role(green.config_name)
    started = clock()
    assert ep.blue is not None
    old_total, new_total = ep.blue.instance_count, green.instance_count
    batch = batch_instances(policy["MaximumBatchSize"], new_total)
    new, old = 0, old_total
    ep.green = green
    ep.set_capacity(0, old_total)
    for i, (new_after, old_during) in enumerate(rolling_plan(batch, old_total, new_total)):
        ep.set_pending_status("Creating", f"Launching {new_after - new} instance(s).", new)
        if i and backend.stopping.wait(backend.provisioning_delay):  # the first batch was provisioned already
            return None
        new, old = new_after, old_during
        ep.set_pending_status("ActivatingTraffic", f"Activating traffic on {new} instance(s).", new)
        ep.set_capacity(new, old)
        ep.set_pending_status("Baking", f"Baking for {policy['WaitIntervalInSeconds']:g} seconds "
                              f"(WaitIntervalInSeconds) with traffic enabled on {new} instance(s).", new)
        reason = _bake(backend, alarms, role, policy["WaitIntervalInSeconds"], started, timeout)
        if reason == STOPPED:
            return None
        if reason is not None:
            return _roll_back_rolling(backend, ep, new, old, old_total, policy.get("RollbackMaximumBatchSize"),
                                      reason)
        old = max(old - batch, 0)  # the baked batch's share of the old fleet is cleaned up
        ep.set_capacity(new, old)
    ep.finish_update(green)
    return None


def _roll_back_rolling(backend: Host, ep: Endpoint, new: int, old: int, old_total: int,
                       size: dict[str, Any] | None, reason: str) -> None:
    """Old instances come back and new ones go, a batch at a time (each batch takes the provisioning time);
    traffic follows the instances in service. The VariantStatus messages are ours (AWS documents none)."""
    batch = batch_instances(size, old_total) if size else None
    for step_new, step_old in rollback_plan(new, old, old_total, batch):
        ep.set_pending_status("Deleting", f"Rolling back: {new - step_new} instance(s) of the new fleet to "
                              f"terminate, {step_old - old} of the old fleet to launch.", new)
        if backend.stopping.wait(backend.provisioning_delay):
            return None
        ep.set_capacity(new, step_old)  # the old batch is up first, then the new batch goes
        new, old = step_new, step_old
        ep.set_capacity(new, old)
    ep.roll_back(reason)
    return None
