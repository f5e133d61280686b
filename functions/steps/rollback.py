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
    """Send the endpoint back to the previous config; called again by the state machine's Wait/Choice loop until
    `settled` (InService on the previous config), so ROLLED_BACK is announced only once SageMaker is done."""
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
    polls = base.rollback_polls + 1 if base.rolled_back else 0
    if current == previous or pending == previous:  # already rolled back / rolling back (a poll or a retry)
        return base.model_copy(
            update={
                "rolled_back": True,
                "rollback_config": previous,
                "endpoint_status": status,
                "settled": current == previous and status == "InService" and pending is None,
                "rollback_polls": polls,
            }
        )
    if base.rolled_back and status not in BUSY:
        # We sent the rollback, SageMaker finished, and the endpoint is not on the previous config.
        raise DeploymentFailed(
            f"rollback of {deployment.endpoint_name} to {previous} did not take: the endpoint is {status} on "
            f"{current} ({described.get('FailureReason', 'no FailureReason')})"
        )
    if status in BUSY:
        raise EndpointNotReady(f"endpoint {deployment.endpoint_name} is {status}; cannot roll back now")
    if status != "InService":
        raise DeploymentFailed(f"endpoint {deployment.endpoint_name} is {status}; cannot roll back")
    sagemaker.update_endpoint(deployment.endpoint_name, previous, ROLLBACK_CONFIG)
    return base.model_copy(
        update={"rolled_back": True, "rollback_config": previous, "endpoint_status": "Updating", "settled": False}
    )
