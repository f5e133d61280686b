"""deploy: CreateEndpoint when there is none, else a guarded UpdateEndpoint (blue/green, or rolling)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from functions.adapters import sagemaker
from functions.config import Settings
from functions.errors import DeploymentFailed, EndpointNotReady, InvalidTrigger
from functions.models import AlarmsState, DeploymentMode, DeploymentState, DeploymentStatus, Strategy, Upload
from functions.stats.plan import canary_refusal
from functions.stats.verdict import VerdictPolicy

MIN_TIMEOUT, MAX_TIMEOUT = 600, 28800  # MaximumExecutionTimeoutInSeconds limits
# Fleet provisioning before the first bake starts (~10 min observed, shared/aws-reference.md §1.8): audit row 18.
PROVISIONING_MARGIN_SECONDS = 900
# A rolling update launches instances again for every later batch ("SageMaker AI continues to provision, shift,
# and clean up instances in batches", Use rolling deployments); endpoint creation took 2 min 25 s-2 min 46 s in the
# runs of §1.8, so 5 min per batch.
BATCH_PROVISIONING_SECONDS = 300
# After its own timeout SageMaker still rolls back (~4 min observed, §0.5): polls last that much longer (row 7).
ROLLBACK_MARGIN_SECONDS = 600
# ~9 history events per poll (Wait, Task, Choice); Standard workflows stop at 25,000 events (row 19).
MAX_POLLS = 2000
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}


def upload_deployment_config(upload: Upload, settings: Settings, alarm_names: list[str]) -> dict[str, Any]:
    """The DeploymentConfig this upload's UpdateEndpoint sends (also what the lock's lifetime is derived from)."""
    return build_deployment_config(
        upload.strategy,
        canary_percent=upload.canary_percent,
        linear_step_percent=upload.linear_step_percent,
        wait_interval_seconds=settings.wait_interval_seconds,
        termination_wait_seconds=settings.termination_wait_seconds,
        max_execution_timeout_seconds=settings.max_execution_timeout_seconds,
        alarm_names=alarm_names,
        instance_count=settings.instance_count,  # the new config's (create_endpoint_config)
        rolling_batch_percent=upload.rolling_batch_percent,
        rollback_batch_percent=upload.rollback_batch_percent,
    )


def execution_timeout(config: dict[str, Any]) -> int:
    """MaximumExecutionTimeoutInSeconds of a DeploymentConfig, whichever its update policy."""
    policy = config.get("BlueGreenUpdatePolicy") or config["RollingUpdatePolicy"]
    return int(policy["MaximumExecutionTimeoutInSeconds"])


def build_deployment_config(
    strategy: Strategy | str,
    *,
    canary_percent: int,
    linear_step_percent: int,
    wait_interval_seconds: int,
    termination_wait_seconds: int,
    max_execution_timeout_seconds: int,
    alarm_names: list[str],
    instance_count: int = 1,
    rolling_batch_percent: int = 25,
    rollback_batch_percent: int | None = None,
) -> dict[str, Any]:
    """DeploymentConfig for UpdateEndpoint (pure). WaitIntervalInSeconds is required even for ALL_AT_ONCE."""
    try:
        strategy = Strategy(strategy)
    except ValueError as exc:
        raise InvalidTrigger(f"unknown strategy {strategy!r}; use ALL_AT_ONCE, CANARY, LINEAR or ROLLING") from exc
    if not 1 <= len(alarm_names) <= 10:
        raise InvalidTrigger(f"AutoRollbackConfiguration needs 1-10 alarms, got {len(alarm_names)}")
    if strategy is Strategy.ROLLING:
        return _rolling_config(instance_count, rolling_batch_percent, rollback_batch_percent, wait_interval_seconds,
                               max_execution_timeout_seconds, alarm_names)
    routing: dict[str, Any] = {"Type": strategy.value, "WaitIntervalInSeconds": wait_interval_seconds}
    bakes = 1  # number of wait intervals the deployment goes through
    if strategy is Strategy.CANARY:
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": canary_percent}
        bakes = 2  # the canary's bake, then "a final baking period" after the full shift (AWS)
    elif strategy is Strategy.LINEAR:
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": linear_step_percent}
        bakes = math.ceil(100 / linear_step_percent) + 1  # each step, then the final bake
    # The timeout must exceed all bakes plus the termination wait plus provisioning, within SageMaker's limits;
    # the template's value is a floor. Bakes that fit but leave less than the margin are clamped to the maximum.
    needed = bakes * wait_interval_seconds + termination_wait_seconds
    timeout = min(MAX_TIMEOUT, max(max_execution_timeout_seconds, MIN_TIMEOUT, needed + PROVISIONING_MARGIN_SECONDS))
    if needed >= MAX_TIMEOUT:
        raise InvalidTrigger(
            f"{strategy.value} with {bakes} wait interval(s) of {wait_interval_seconds}s needs "
            f"{needed}s, over SageMaker's {MAX_TIMEOUT}s maximum"
        )
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": timeout,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": n} for n in alarm_names]},
    }


def _rolling_config(instances: int, batch_percent: int, rollback_percent: int | None, wait: int,
                    floor_timeout: int, alarm_names: list[str]) -> dict[str, Any]:
    """RollingUpdatePolicy (API_RollingUpdatePolicy): MaximumBatchSize "must be between 5% to 50% of the
    variant's total instance count", so a fleet of one cannot roll; RollbackMaximumBatchSize left out = AWS's
    default, the whole old fleet at once. Multi-variant endpoints cannot roll either (deployment-guardrails-
    exclusions): Guardrail's configs have one production variant, and SageMaker refuses a shadow test's."""
    if instances < 2:
        raise InvalidTrigger(
            f"ROLLING needs at least 2 instances (InstanceCount is {instances}): a batch must be 5-50 % of the "
            "fleet; use CANARY, LINEAR or ALL_AT_ONCE, or more instances")
    batch = max(1, math.floor(instances * batch_percent / 100))  # AWS's sample: "33% * 3 = 1 instance"
    batches = math.ceil(instances / batch)
    needed = batches * wait
    if needed >= MAX_TIMEOUT:
        raise InvalidTrigger(
            f"ROLLING with {batches} batch(es) of {batch} instance(s) baking {wait}s each needs {needed}s, over "
            f"SageMaker's {MAX_TIMEOUT}s maximum")
    margin = PROVISIONING_MARGIN_SECONDS + (batches - 1) * BATCH_PROVISIONING_SECONDS
    policy: dict[str, Any] = {
        "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": batch_percent},
        "WaitIntervalInSeconds": wait,
        "MaximumExecutionTimeoutInSeconds": min(MAX_TIMEOUT, max(floor_timeout, MIN_TIMEOUT, needed + margin)),
    }
    if rollback_percent is not None:
        policy["RollbackMaximumBatchSize"] = {"Type": "CAPACITY_PERCENT", "Value": rollback_percent}
    return {"RollingUpdatePolicy": policy,
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": n} for n in alarm_names]}}


def poll_budget(timeout_seconds: int, settings: Settings) -> tuple[int, int]:
    """(seconds between polls, polls) that outlast SageMaker's own MaximumExecutionTimeout plus its rollback, so
    a deployment SageMaker still runs is never reported as finished. Polls spread out (never fewer than
    PollIntervalSeconds apart) to stay under MAX_POLLS; MaxPollAttempts remains the minimum."""
    horizon = timeout_seconds + ROLLBACK_MARGIN_SECONDS
    poll = max(settings.poll_interval_seconds, math.ceil(horizon / MAX_POLLS))
    return poll, max(settings.max_poll_attempts, math.ceil(horizon / poll))


def deploy(upload: Upload, alarms: AlarmsState | None, settings: Settings) -> DeploymentState:
    endpoint, target = upload.endpoint_name, upload.names.endpoint_config
    described = sagemaker.describe_endpoint(endpoint)
    if described is None:
        sagemaker.create_endpoint(endpoint, target)
        return DeploymentState(
            mode=DeploymentMode.CREATE,
            poll_seconds=settings.poll_interval_seconds,
            max_attempts=settings.max_poll_attempts,
            endpoint_name=endpoint,
            target_config=target,
            status=DeploymentStatus.IN_PROGRESS,
            endpoint_status="Creating",
        )

    status = described["EndpointStatus"]
    current = described.get("EndpointConfigName")
    pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if status in BUSY and pending == target:
        # Our own update already started (a retried invocation): keep following it.
        poll, polls = poll_budget(MAX_TIMEOUT, settings)  # the config sent is not known here: the longest
        return DeploymentState(
            mode=DeploymentMode.UPDATE,
            poll_seconds=poll,
            max_attempts=polls,
            endpoint_name=endpoint,
            target_config=target,
            previous_config=current,
            previous_failure_reason=described.get("FailureReason"),
            status=DeploymentStatus.IN_PROGRESS,
            endpoint_status=status,
            current_config=current,
        )
    if status in BUSY:
        raise EndpointNotReady(f"endpoint {endpoint} is {status}; cannot update it now")
    if status == "Failed":
        # A Failed endpoint (e.g. its first CreateEndpoint failed) serves nothing and can only be deleted
        # (aws-audit #16): delete it and let the state machine retry; the retry creates it anew.
        sagemaker.delete_endpoint(endpoint)
        raise EndpointNotReady(
            f"endpoint {endpoint} was Failed ({described.get('FailureReason', 'no reason given')}): deleted, "
            "it will be created again"
        )
    if status != "InService":
        raise DeploymentFailed(
            f"endpoint {endpoint} is {status}: {described.get('FailureReason', 'no reason given')}"
        )
    if alarms is None:
        raise DeploymentFailed(
            "no rollback alarms in the execution document: run ensure_alarms before deploy"
        )

    if settings.canary_verdict == "msprt" and current != target:  # a verdict that cannot decide is refused
        refusal = canary_refusal(
            str(getattr(upload.strategy, "value", upload.strategy)), wait_interval_seconds=settings.wait_interval_seconds,
            metric_period_seconds=settings.metric_period_seconds,
            share_percent=upload.canary_percent if upload.strategy == "CANARY" else upload.linear_step_percent,
            policy=VerdictPolicy(min_requests=settings.shadow_min_invocations),
        )
        if refusal is not None:
            raise InvalidTrigger(refusal)
    config = upload_deployment_config(upload, settings, alarms.names)
    poll, polls = poll_budget(execution_timeout(config), settings)
    started = datetime.now(UTC)
    if current != target:
        sagemaker.update_endpoint(endpoint, target, config)
    serving = described.get("ProductionVariants") or [{}]
    return DeploymentState(
        mode=DeploymentMode.UPDATE,
        endpoint_name=endpoint,
        target_config=target,
        previous_config=current,
        previous_failure_reason=described.get("FailureReason"),
        status=DeploymentStatus.IN_PROGRESS,
        endpoint_status="Updating" if current != target else status,
        current_config=current,
        deployment_config=config,
        poll_seconds=poll,
        max_attempts=polls,
        previous_variant=serving[0].get("VariantName"),  # the canary verdict's baseline fleet
        # Same name as the old fleet (blue/green rule); the canary verdict tells the fleets apart by config.
        target_variant=serving[0].get("VariantName"),
        started_at=started,
    )
