"""Shadow test as a SageMaker inference experiment: start, check (analysis), conclude (promote or remove).

The experiment's own Schedule ends later than our analysis window (`ends_at`): when a schedule ends SageMaker
reverts the endpoint by itself, and we want to conclude it ourselves with Promote/Remove while it runs.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters import s3, sagemaker
from functions.config import Settings
from functions.errors import DeploymentFailed, EndpointNotReady, ResourceAlreadyExists, ResourceInUse
from functions.models import DeploymentRequest, ShadowAbort, ShadowState, Upload, Verdict
from functions.stats.verdict import VerdictPolicy
from functions.steps.shadow_analysis import (
    analyze,
    baseline_tail_threshold,
    policy_for,
    pre_test_plan,
    sequential_analysis,
)

ENDED = {"Completed", "Cancelled"}
SCHEDULE_GRACE = timedelta(minutes=10)
# "The maximum duration that you can set for an inference experiment is 30 days" (InferenceExperimentSchedule).
MAX_EXPERIMENT = timedelta(days=30)
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
        "shadow_variant": upload.names.shadow_variant,
        "shadow_model": upload.names.model,
        "sampling_percent": upload.shadow.sampling_percent,
    }


def _evidence_settings(upload: Upload, settings: Settings) -> dict[str, Any]:
    """Method, first wait, verdict policy and evidence locations, fixed for the whole test."""
    duration = upload.shadow.duration_seconds
    if settings.shadow_method == "thresholds":
        return {"method": "thresholds", "poll_seconds": duration}  # one look, at the end of the window
    raw = s3.read_json_if_exists(upload.bucket, upload.deployment_key) or {}
    overrides = DeploymentRequest.model_validate(raw).guardrails if isinstance(raw, dict) else None
    # Re-evaluated at every poll; polls spread so that max_poll_attempts covers the whole window.
    poll = max(settings.poll_interval_seconds, math.ceil(duration / settings.max_poll_attempts))
    return {
        "method": "msprt",
        "poll_seconds": max(1, min(duration, poll)),
        "policy": policy_for(settings, overrides).model_dump(mode="json"),
        "capture_uri": settings.data_capture_uri,
        "ground_truth_uri": (overrides.ground_truth_uri if overrides else None) or settings.ground_truth_uri,
        "evaluation_uri": f"s3://{upload.bucket}/{upload.evaluation_key}",
    }


def production_evaluation_uri(model_name: str) -> str | None:
    """Production's evaluation.json, beside its deployed artifact (deployed/<sha256>/, create_model): its own
    decision threshold for the paired accuracy. None when the model has no S3 artifact."""
    model = sagemaker.describe_model(model_name) or {}
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    url = container.get("ModelDataUrl", "")
    return url.rsplit("/", 1)[0] + "/evaluation.json" if url.startswith("s3://") and "/" in url[5:] else None


def _before_the_test(
    upload: Upload, settings: Settings, evidence: dict[str, Any], production: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """What is fixed before any test data: production's evaluation.json, production's p99 of the hour before (the
    tail threshold) and the plan (expected minutes to a decision, P(inconclusive), a warning when the test cannot
    decide) from production's traffic of the hour before. Advice: a failure to read any of it starts the test
    without it (the verdict then reads the tail threshold itself and says nothing about the plan)."""
    out: dict[str, Any] = {}
    try:
        out["production_evaluation_uri"] = production_evaluation_uri(production["ModelName"])
    except Exception:  # advice only: without it each model is scored at the shadow's threshold
        out["production_evaluation_uri"] = None
    policy = VerdictPolicy.model_validate(evidence["policy"])
    variant = production["VariantName"]
    if policy.tail_threshold_micros is None:
        threshold = baseline_tail_threshold(upload.endpoint_name, variant, now)
        if threshold:
            policy = policy.model_copy(update={"tail_threshold_micros": threshold})
            out["policy"] = policy.model_dump(mode="json")
    forecast = pre_test_plan(
        upload.endpoint_name, variant, now, upload.shadow.duration_seconds, settings, policy,
        upload.shadow.sampling_percent / 100, mirrored=True, tail=policy.tail_threshold_micros is not None,
    )
    out["plan"] = forecast.model_dump(mode="json") if forecast is not None else None
    return out


def schedule_end(start: datetime, duration_seconds: int) -> datetime:
    """The experiment's scheduled end: our window plus a grace as long as the window (SageMaker's own end is only
    a backstop), never more than AWS's 30 days after the start (audit row 12)."""
    window = timedelta(seconds=duration_seconds)
    return start + min(window + max(SCHEDULE_GRACE, window), MAX_EXPERIMENT)


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
    settings.require("shadow_experiment_role_arn")
    # Everything that can fail (the deployment.json read needs s3:GetObject) before the experiment exists:
    # a failure after CreateInferenceExperiment would leave a running experiment behind (aws-audit #2).
    evidence = _evidence_settings(upload, settings)
    if evidence["method"] == "msprt":
        evidence |= _before_the_test(upload, settings, evidence, production, now)
    ends_at = now + timedelta(seconds=upload.shadow.duration_seconds)
    scheduled_end = schedule_end(now, upload.shadow.duration_seconds)
    instance_type = production.get("InstanceType") or settings.instance_type
    instance_count = production.get("InitialInstanceCount") or settings.instance_count
    try:
        arn = sagemaker.create_inference_experiment(
            name=upload.names.experiment,
            endpoint_name=upload.endpoint_name,
            # The dedicated role SageMaker assumes to manage the endpoint for the experiment (aws-audit #3),
            # not the model execution role (the inference container holds that one's credentials).
            role_arn=settings.shadow_experiment_role_arn or "",
            production={
                "ModelName": production["ModelName"],
                "VariantName": production["VariantName"],
                "InstanceType": instance_type,
                "InstanceCount": instance_count,
            },
            shadow={
                "ModelName": upload.names.model,
                "VariantName": upload.names.shadow_variant,
                "InstanceType": instance_type,
                "InstanceCount": instance_count,
            },
            sampling_percent=upload.shadow.sampling_percent,
            start=now,
            end=scheduled_end,
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
        **evidence,
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
    if shadow.method == "msprt":
        # Final at the window's end, or at the last poll the state machine allows: never a verdict-less end.
        final = now >= ends_at or shadow.attempts + 1 >= settings.max_poll_attempts
        analysis = sequential_analysis(shadow, start, window_end, settings, final=final)
    else:
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
    """ModelVariantActions: promote the shadow (removing production) on a PROMOTE verdict, or on an
    INCONCLUSIVE one when the verdict policy's configured default says so."""
    production = shadow.production_variant or ""
    default = (shadow.policy or {}).get("on_inconclusive", "Remove")
    if verdict is Verdict.PROMOTE or (verdict is Verdict.INCONCLUSIVE and default == "Promote"):
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
    ours = str(described.get("StatusReason", "")).startswith(STOP_REASON_PREFIX)
    if status in ENDED and not ours and verdict is Verdict.PROMOTE:
        raise DeploymentFailed(
            f"experiment {shadow.experiment_name} is already {status}; the shadow can no longer be promoted"
        )
    if status == "Stopping" or status in ENDED:
        # Stopped by an earlier invocation (the state machine polls this step until `settled`, or a retry), or
        # over by itself (SageMaker removed the shadow; production untouched). Done once the experiment has
        # ended and the endpoint's update (Promote replaces the production variant) has finished.
        endpoint = sagemaker.describe_endpoint(shadow.endpoint_name) or {}
        return shadow.model_copy(
            update={
                "status": "CONCLUDED",
                "experiment_status": status,
                "verdict": verdict,
                "actions": actions,
                "settled": status in ENDED and endpoint.get("EndpointStatus") == "InService",
                "stop_polls": shadow.stop_polls + 1 if shadow.status == "CONCLUDED" else 0,
            }
        )
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


def abort_shadow_test(experiment_name: str, reason: str) -> ShadowAbort:
    """A step failed after StartShadowTest: stop the experiment with the shadow Removed and production Retained,
    so nothing keeps mirroring (and billing) traffic until the schedule ends (audit row 8). Variant names come
    from DescribeInferenceExperiment, so this works even when the failing step left no `shadow` document."""
    described = sagemaker.describe_inference_experiment(experiment_name)
    if described is None:
        return ShadowAbort(experiment_name=experiment_name, reason="no experiment: nothing to stop")
    status = described["Status"]
    if status in ENDED or status == "Stopping":
        return ShadowAbort(experiment_name=experiment_name, experiment_status=status, reason=f"already {status}")
    config = described.get("ShadowModeConfig") or {}
    production = config.get("SourceModelVariantName")
    shadows = [v["ShadowModelVariantName"] for v in config.get("ShadowModelVariants") or []]
    if not production or not shadows:
        raise DeploymentFailed(f"experiment {experiment_name} has no ShadowModeConfig to stop by")
    actions = {production: "Retain", **{name: "Remove" for name in shadows}}
    sagemaker.stop_inference_experiment(experiment_name, actions, reason=f"Guardrail aborted: {reason}")
    return ShadowAbort(
        experiment_name=experiment_name, experiment_status=status, stopped=True, actions=actions, reason=reason
    )
