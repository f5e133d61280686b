"""rollback: the post-deployment watch saw an alarm; send the endpoint back to the previous config."""

from __future__ import annotations

from functions.adapters import sagemaker
from functions.errors import DeploymentFailed, EndpointNotReady
from functions.models import DeploymentState, WatchState
from functions.steps.deploy import BUSY

# Back to the known-good fleet at once: no canary and no alarms (they watch the fleet being removed).
ROLLBACK_CONFIG = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 0,
        "MaximumExecutionTimeoutInSeconds": 600,
    }
}


def rollback(deployment: DeploymentState, watch: WatchState | None) -> WatchState:
    previous = deployment.previous_config
    if not previous or previous == deployment.target_config:
        raise DeploymentFailed(
            f"cannot roll back {deployment.endpoint_name}: no previous config (first deployment)"
        )
    described = sagemaker.describe_endpoint(deployment.endpoint_name)
    if described is None:
        raise DeploymentFailed(f"endpoint {deployment.endpoint_name} no longer exists")
    status, current = described["EndpointStatus"], described.get("EndpointConfigName")
    pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    base = watch or WatchState(alarm=True)
    if current == previous or pending == previous:  # already rolled back / rolling back (a retry)
        return base.model_copy(update={"rolled_back": True, "rollback_config": previous})
    if status in BUSY:
        raise EndpointNotReady(f"endpoint {deployment.endpoint_name} is {status}; cannot roll back now")
    if status != "InService":
        raise DeploymentFailed(f"endpoint {deployment.endpoint_name} is {status}; cannot roll back")
    sagemaker.update_endpoint(deployment.endpoint_name, previous, ROLLBACK_CONFIG)
    return base.model_copy(update={"rolled_back": True, "rollback_config": previous})
