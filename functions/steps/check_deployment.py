"""check_deployment: where the deployment stands (polled by a Wait/Choice loop), and, once it succeeded, the
post-deployment watch of the guardrail alarms.

A rollback ends with the endpoint InService on the OLD config, so InService alone proves nothing: compare the
serving EndpointConfigName with the new and the previous config. FailureReason survives into later updates,
so it is news only when it differs from the value seen before the update.
"""

from __future__ import annotations

from typing import Any

from functions.adapters import cloudwatch, sagemaker
from functions.errors import DeploymentFailed
from functions.models import AlarmsState, DeploymentMode, DeploymentState, DeploymentStatus, WatchState

IN_PROGRESS = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
FAILED = {"Failed", "UpdateRollbackFailed", "OutOfService", "Deleting"}


def classify(
    deployment: DeploymentState, described: dict[str, Any] | None
) -> tuple[DeploymentStatus, str | None]:
    """(status, failure reason) from one DescribeEndpoint (pure). DeploymentFailed when the endpoint is gone
    or serves a config that is neither the new nor the previous one (someone else changed it)."""
    if described is None:
        raise DeploymentFailed(f"endpoint {deployment.endpoint_name} no longer exists")
    status = described["EndpointStatus"]
    reason = described.get("FailureReason")
    new_reason = reason if reason and reason != deployment.previous_failure_reason else None
    if status in IN_PROGRESS:
        return DeploymentStatus.IN_PROGRESS, None
    if status in FAILED:  # the state machine's Choice turns FAILED into a DeploymentFailed error
        return DeploymentStatus.FAILED, reason or f"endpoint is {status} (no FailureReason given)"
    if status != "InService":
        raise DeploymentFailed(f"endpoint {deployment.endpoint_name} is in unexpected status {status}")
    current = described.get("EndpointConfigName")
    if current == deployment.target_config:
        return DeploymentStatus.SUCCEEDED, None
    if deployment.mode is DeploymentMode.UPDATE and current == deployment.previous_config:
        return (
            DeploymentStatus.ROLLED_BACK,
            new_reason or reason or "endpoint returned to the previous config",
        )
    raise DeploymentFailed(
        f"endpoint {deployment.endpoint_name} serves {current}, neither the new config "
        f"{deployment.target_config} nor the previous {deployment.previous_config}"
    )


def _alarm_names(alarms: AlarmsState | None, deployment: DeploymentState) -> list[str]:
    if alarms is not None:
        return alarms.names
    rollback = (deployment.deployment_config or {}).get("AutoRollbackConfiguration", {})
    return [a["AlarmName"] for a in rollback.get("Alarms", [])]


def check_deployment(deployment: DeploymentState, alarms: AlarmsState | None) -> DeploymentState:
    described = sagemaker.describe_endpoint(deployment.endpoint_name)
    status, reason = classify(deployment, described)
    attempts = deployment.attempts + 1  # the state machine bounds the polls (MaxPollAttempts)
    states = cloudwatch.alarm_states(_alarm_names(alarms, deployment))
    return deployment.model_copy(
        update={
            "status": status,
            "endpoint_status": described and described["EndpointStatus"],
            "current_config": described and described.get("EndpointConfigName"),
            "failure_reason": reason,
            "alarms": states,
            "alarms_in_alarm": [n for n, s in states.items() if s == "ALARM"],
            "attempts": attempts,
        }
    )


def watch_deployment(deployment: DeploymentState, alarms: AlarmsState | None) -> WatchState:
    """After SageMaker's own bake: is any guardrail alarm firing on the new fleet?"""
    states = cloudwatch.alarm_states(_alarm_names(alarms, deployment))
    firing = [n for n, s in states.items() if s == "ALARM"]
    return WatchState(alarms=states, alarms_in_alarm=firing, alarm=bool(firing))
