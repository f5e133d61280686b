"""check_deployment: where the deployment stands (polled by a Wait/Choice loop), and, once it succeeded, the
post-deployment watch of the guardrail alarms.

A rollback ends with the endpoint InService on the OLD config, so InService alone proves nothing: compare the
serving EndpointConfigName with the new and the previous config. FailureReason survives into later updates,
so it is news only when it differs from the value seen before the update.

With CANARY_VERDICT=msprt each poll of an update in progress also judges the new fleet against the old one
with the sequential verdict (shadow_analysis.canary_analysis). On REJECT it publishes `Regression=1` to the
verdict alarm's metric, so SageMaker rolls back as for any guardrail alarm; it never publishes otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters import cloudwatch, sagemaker
from functions.config import Settings, load_settings
from functions.errors import DeploymentFailed, aws_errors
from functions.models import (
    AlarmsState,
    DeploymentMode,
    DeploymentState,
    DeploymentStatus,
    ShadowAnalysis,
    Upload,
    Verdict,
    WatchState,
)
from functions.steps.ensure_alarms import VERDICT_METRIC, VERDICT_NAMESPACE, verdict_dimensions
from functions.steps.evidence import deployment_evidence, evidence_action
from functions.steps.shadow_analysis import canary_analysis

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


def capacity_share(
    deployment_config: dict[str, Any] | None, instances: int, *, first_step: bool = False
) -> float | None:
    """The new fleet's share of requests during a CANARY step: k of its n instances take k/n (AWS routes "a
    portion of the incoming traffic" to the canary; the rounding of CAPACITY_PERCENT to whole instances, at
    least one, is the emulator's and our guess: AWS does not say). LINEAR has one share per step: None, or with
    `first_step` the first step's (every later step's is larger). None for ALL_AT_ONCE."""
    routing = ((deployment_config or {}).get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
    kind = "LINEAR" if first_step else "CANARY"
    size = routing.get("LinearStepSize" if first_step else "CanarySize")
    if routing.get("Type") != kind or not size or instances < 1:
        return None
    k = int(size["Value"]) if size["Type"] == "INSTANCE_COUNT" else max(1, instances * int(size["Value"]) // 100)
    return min(k, instances) / instances


def judge_canary(deployment: DeploymentState, settings: Settings, now: datetime) -> ShadowAnalysis | None:
    """The sequential verdict on the new fleet so far, or None when it does not apply (no baseline fleet)."""
    if not (
        deployment.previous_config
        and deployment.previous_variant
        and deployment.target_variant
        and deployment.started_at
    ):
        return None
    return canary_analysis(
        deployment.endpoint_name,
        (deployment.previous_config, deployment.previous_variant),
        (deployment.target_config, deployment.target_variant),
        deployment.started_at,
        now,
        settings,
        # the sample-ratio check: the new fleet's share of requests in the step must be its capacity share
        capacity_share=capacity_share(deployment.deployment_config, settings.instance_count),
        minimum_share=capacity_share(deployment.deployment_config, settings.instance_count, first_step=True),
    )


def publish_regression(deployment: DeploymentState, settings: Settings) -> None:
    """Regression=1 for the new config: the verdict alarm (Maximum >= 1) fires on its next evaluation."""
    datum = {
        "MetricName": VERDICT_METRIC,
        "Dimensions": verdict_dimensions(deployment.endpoint_name, deployment.target_config),
        "Value": 1.0,
        "Unit": "Count",
        # High resolution, so alarms with 10/30-s periods can read it too.
        "StorageResolution": 1 if settings.alarm_period_seconds < 60 else 60,
    }
    with aws_errors("put_metric_data"):
        cloudwatch.client().put_metric_data(Namespace=VERDICT_NAMESPACE, MetricData=[datum])


def check_deployment(
    deployment: DeploymentState, alarms: AlarmsState | None, settings: Settings | None = None
) -> DeploymentState:
    settings = settings or load_settings()
    described = sagemaker.describe_endpoint(deployment.endpoint_name)
    status, reason = classify(deployment, described)
    attempts = deployment.attempts + 1  # the state machine bounds the polls (MaxPollAttempts)
    verdict = deployment.canary_verdict
    if (
        settings.canary_verdict == "msprt"
        and deployment.mode is DeploymentMode.UPDATE
        and status is DeploymentStatus.IN_PROGRESS
    ):
        verdict = judge_canary(deployment, settings, datetime.now(UTC)) or verdict
        # A REJECT stays a REJECT (the test is always valid): keep the metric up until SageMaker acts.
        if verdict is not None and (
            verdict.verdict is Verdict.REJECT
            or (deployment.canary_verdict and deployment.canary_verdict.verdict is Verdict.REJECT)
        ):
            if verdict.verdict is not Verdict.REJECT:
                verdict = deployment.canary_verdict
            publish_regression(deployment, settings)
    states = cloudwatch.alarm_states(_alarm_names(alarms, deployment))
    succeeded_at = deployment.succeeded_at
    if status is DeploymentStatus.SUCCEEDED and succeeded_at is None:
        succeeded_at = datetime.now(UTC)  # the post-deployment watch window starts here
    return deployment.model_copy(
        update={
            "status": status,
            "succeeded_at": succeeded_at,
            "endpoint_status": described and described["EndpointStatus"],
            "current_config": described and described.get("EndpointConfigName"),
            "failure_reason": reason,
            "alarms": states,
            "alarms_in_alarm": [n for n, s in states.items() if s == "ALARM"],
            "attempts": attempts,
            "canary_verdict": verdict,
        }
    )


def endpoint_moved(deployment: DeploymentState) -> tuple[bool, str | None]:
    """(changed by someone else, config serving now): after SageMaker finished our update, the endpoint must still
    serve the deployed config and not be on its way to another one (F08b, issue 12 §6)."""
    described = sagemaker.describe_endpoint(deployment.endpoint_name)
    if described is None:
        return True, None
    serving = described.get("EndpointConfigName")
    pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    moving = described["EndpointStatus"] in IN_PROGRESS and pending not in (None, deployment.target_config)
    return serving != deployment.target_config or moving, serving


def watch_deployment(
    deployment: DeploymentState,
    alarms: AlarmsState | None,
    settings: Settings | None = None,
    now: datetime | None = None,
    *,
    upload: Upload | None = None,
    previous: WatchState | None = None,
) -> WatchState:
    """After SageMaker's own bake: did any guardrail alarm fire on the new fleet during the watch (aws-audit #11)?

    The watch alarms are on {EndpointName, VariantName} (after the shift only the new fleet serves the variant);
    the rollback alarms (EndpointConfigName) are read too, in case that series persists. Not only the state at
    the end: DescribeAlarmHistory over the whole window, so an alarm that fired and cleared counts."""
    now = now or datetime.now(UTC)
    names = [*(alarms.watch_names if alarms else []), *_alarm_names(alarms, deployment)]
    states = cloudwatch.alarm_states(names)
    if deployment.succeeded_at is not None:
        start = deployment.succeeded_at
    else:  # a document from before succeeded_at existed: the configured watch plus one alarm period
        settings = settings or load_settings()
        start = now - timedelta(seconds=settings.post_deployment_watch_seconds + settings.alarm_period_seconds)
    fired = cloudwatch.alarms_fired(names, start, now)
    # A guardrail that vanished cannot say the model is fine (F10): MISSING counts as firing (issue 12 §3).
    missing = [n for n in names if states.get(n) == "MISSING"]
    firing = [n for n in names if states.get(n) in ("ALARM", "MISSING") or n in fired]
    changed, serving = endpoint_moved(deployment)
    # No evidence, no promotion (issue 11 §3): an alarm decides first; otherwise count what the new fleet served.
    settings = settings or load_settings()
    extensions = previous.extensions if previous is not None else 0
    evidence = None if firing or changed else deployment_evidence(deployment, upload, settings, now)
    action = "OK" if evidence is None else evidence_action(evidence, extensions, settings)
    return WatchState(
        alarms=states,
        alarms_in_alarm=firing,
        alarm=bool(firing),
        fired_during_watch=fired,
        missing_alarms=missing,
        changed_externally=changed,
        serving_config=serving,
        evidence=evidence,
        evidence_action=action,
        extensions=extensions + (action == "EXTEND"),
    )
