"""Shadow test as a SageMaker inference experiment: start, check (analysis), conclude (promote or remove).

The experiment's own Schedule ends later than our analysis window (`ends_at`): when a schedule ends SageMaker
reverts the endpoint by itself, and we want to conclude it ourselves with Promote/Remove while it runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters import sagemaker
from functions.config import Settings
from functions.errors import DeploymentFailed, EndpointNotReady, ResourceAlreadyExists, ResourceInUse
from functions.models import ShadowState, Upload, Verdict
from functions.steps.shadow_analysis import analyze

ENDED = {"Completed", "Cancelled"}
SCHEDULE_GRACE = timedelta(minutes=10)
STOP_REASON_PREFIX = "Guardrail verdict"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _base(upload: Upload) -> dict[str, Any]:
    return {
        "experiment_name": upload.names.experiment,
        "endpoint_name": upload.endpoint_name,
        "shadow_variant": upload.names.variant,
        "shadow_model": upload.names.model,
        "sampling_percent": upload.shadow.sampling_percent,
    }


def start_shadow_test(upload: Upload, settings: Settings, now: datetime | None = None) -> ShadowState:
    """Mirror production traffic to the new model. SKIPPED when there is no production endpoint yet."""
    now = now or _now()
    if not upload.shadow.enabled:
        return ShadowState(status="SKIPPED", skipped_reason="no shadow test requested", **_base(upload))
    described = sagemaker.describe_endpoint(upload.endpoint_name)
    if described is None:
        return ShadowState(
            status="SKIPPED", skipped_reason="no endpoint yet: nothing to shadow", **_base(upload)
        )
    if described["EndpointStatus"] != "InService":
        raise EndpointNotReady(f"endpoint {upload.endpoint_name} is {described['EndpointStatus']}")
    config = sagemaker.describe_endpoint_config(described["EndpointConfigName"]) or {}
    production = (config.get("ProductionVariants") or [{}])[0]
    if not production.get("ModelName"):
        raise DeploymentFailed(f"endpoint config {described['EndpointConfigName']} has no production model")
    if production["ModelName"] == upload.names.model:
        return ShadowState(
            status="SKIPPED", skipped_reason=f"{upload.names.model} is already in production", **_base(upload)
        )
    settings.require("sagemaker_role_arn")
    ends_at = now + timedelta(seconds=upload.shadow.duration_seconds)
    schedule_end = ends_at + max(SCHEDULE_GRACE, timedelta(seconds=upload.shadow.duration_seconds))
    instance_type = production.get("InstanceType") or settings.instance_type
    instance_count = production.get("InitialInstanceCount") or settings.instance_count
    try:
        arn = sagemaker.create_inference_experiment(
            name=upload.names.experiment,
            endpoint_name=upload.endpoint_name,
            role_arn=settings.sagemaker_role_arn or "",
            production={
                "ModelName": production["ModelName"],
                "VariantName": production["VariantName"],
                "InstanceType": instance_type,
                "InstanceCount": instance_count,
            },
            shadow={
                "ModelName": upload.names.model,
                "VariantName": upload.names.variant,
                "InstanceType": instance_type,
                "InstanceCount": instance_count,
            },
            sampling_percent=upload.shadow.sampling_percent,
            start=now,
            end=schedule_end,
            data_capture_uri=settings.data_capture_uri,
            description=f"Guardrail shadow test of {upload.model_name}/{upload.model_version}",
        )
    except (ResourceAlreadyExists, ResourceInUse):
        # A retried invocation: the experiment exists already; follow it.
        existing = sagemaker.describe_inference_experiment(upload.names.experiment)
        if existing is None:
            raise
        arn = existing["Arn"]
        start = (existing.get("Schedule") or {}).get("StartTime") or existing.get("CreationTime") or now
        ends_at = start + timedelta(seconds=upload.shadow.duration_seconds)
        now = start
    return ShadowState(
        status="RUNNING",
        experiment_arn=arn,
        experiment_status="Creating",
        production_variant=production["VariantName"],
        production_model=production["ModelName"],
        starts_at=_iso(now),
        ends_at=_iso(ends_at),
        **_base(upload),
    )


def check_shadow_test(shadow: ShadowState, settings: Settings, now: datetime | None = None) -> ShadowState:
    """Experiment status + analysis so far; `done` when the window is over, the experiment ended, or the
    analysis is decisive."""
    if shadow.status == "SKIPPED":
        return shadow.model_copy(update={"done": True})
    now = now or _now()
    described = sagemaker.describe_inference_experiment(shadow.experiment_name)
    if described is None:
        raise DeploymentFailed(f"inference experiment {shadow.experiment_name} does not exist")
    status = described["Status"]
    start = _parse(shadow.starts_at) or now
    ends_at = _parse(shadow.ends_at) or now
    window_end = max(min(now, ends_at), start + timedelta(seconds=1))
    analysis = analyze(
        shadow.endpoint_name,
        shadow.production_variant or "",
        shadow.shadow_variant,
        start,
        window_end,
        settings,
    )
    ended = status in ENDED
    done = ended or now >= ends_at or analysis.decisive
    verdict = analysis.verdict
    reasons = analysis.reasons
    if ended and status == "Cancelled":
        verdict = Verdict.REJECT
        reasons = [f"experiment cancelled: {described.get('StatusReason', 'no reason given')}", *reasons]
    return shadow.model_copy(
        update={
            "status": "ENDED" if done else "RUNNING",
            "experiment_status": status,
            "done": done,
            "verdict": verdict if done else None,
            "analysis": analysis.model_copy(update={"verdict": verdict, "reasons": reasons}),
            "attempts": shadow.attempts + 1,
        }
    )


def variant_actions(shadow: ShadowState, verdict: Verdict) -> dict[str, str]:
    """ModelVariantActions: promote the shadow (removing production) only on a PROMOTE verdict."""
    production = shadow.production_variant or ""
    if verdict is Verdict.PROMOTE:
        return {shadow.shadow_variant: "Promote", production: "Remove"}
    return {shadow.shadow_variant: "Remove", production: "Retain"}


def conclude_shadow_test(shadow: ShadowState) -> ShadowState:
    if shadow.status == "SKIPPED":
        return shadow
    verdict = shadow.verdict or Verdict.INCONCLUSIVE
    actions = variant_actions(shadow, verdict)
    described = sagemaker.describe_inference_experiment(shadow.experiment_name)
    if described is None:
        raise DeploymentFailed(f"inference experiment {shadow.experiment_name} does not exist")
    status = described["Status"]
    concluded = shadow.model_copy(
        update={"status": "CONCLUDED", "experiment_status": status, "verdict": verdict, "actions": actions}
    )
    ours = str(described.get("StatusReason", "")).startswith(STOP_REASON_PREFIX)
    if status == "Stopping" or (status in ENDED and ours):
        return concluded  # stopped by an earlier invocation of this step (a retry)
    if status in ENDED:
        if verdict is Verdict.PROMOTE:
            raise DeploymentFailed(
                f"experiment {shadow.experiment_name} is already {status}; the shadow can no longer be promoted"
            )
        return concluded  # already over: SageMaker removed the shadow itself, production was never touched
    reasons = shadow.analysis.reasons if shadow.analysis else []
    sagemaker.stop_inference_experiment(
        shadow.experiment_name, actions, reason=f"{STOP_REASON_PREFIX} {verdict.value}: " + "; ".join(reasons)
    )
    return shadow.model_copy(
        update={
            "status": "CONCLUDED",
            "experiment_status": "Stopping",
            "verdict": verdict,
            "actions": actions,
        }
    )
