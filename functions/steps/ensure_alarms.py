"""ensure_alarms: the three rollback alarms, scoped to the NEW fleet, verified to exist.

The `EndpointConfigName` dimension makes each alarm watch only the green fleet (SageMaker publishes it for the
new config during a deployment); an alarm on the whole variant would also watch the old fleet.
`Invocation5XXErrors` is 0/1 per request, so its Average is an error rate.
The third alarm carries the canary's sequential verdict: check_deployment publishes `Regression=1` under
`Guardrail/CanaryVerdict` on REJECT, so SageMaker rolls back exactly as for the other two.
"""

from __future__ import annotations

from typing import Any

from functions.adapters import cloudwatch
from functions.config import Settings
from functions.errors import AlarmNotFound
from functions.models import AlarmsState, Upload

NAMESPACE = "AWS/SageMaker"
VERDICT_NAMESPACE, VERDICT_METRIC = "Guardrail/CanaryVerdict", "Regression"


def verdict_alarm_name(upload: Upload) -> str:
    # Same scheme as the other two (functions.steps.names): guardrail-<endpoint>-<config>-<what>.
    return f"guardrail-{upload.endpoint_name}-{upload.names.endpoint_config}-verdict"


def watch_alarm_names(upload: Upload) -> list[str]:
    """The post-deployment watch's 5XX-rate and latency alarms (same scheme: guardrail-<endpoint>-<config>-...)."""
    base = f"guardrail-{upload.endpoint_name}-{upload.names.endpoint_config}-watch"
    return [f"{base}-5xx-rate", f"{base}-model-latency"]


def watch_specs(rollback_specs: list[dict[str, Any]], upload: Upload) -> list[dict[str, Any]]:
    """The 5XX-rate and latency alarms again, on {EndpointName, VariantName} only (aws-audit #11): AWS documents
    the EndpointConfigName dimension "after the new fleet starts receiving traffic" during a deployment, not
    after it; once the deployment is done the new fleet is the only one serving the variant."""
    specs = []
    for spec, name in zip(rollback_specs[:2], watch_alarm_names(upload), strict=True):
        dims = [d for d in spec["Dimensions"] if d["Name"] != "EndpointConfigName"]
        description = spec["AlarmDescription"].replace("(new fleet)", "(post-deployment watch, whole variant)")
        specs.append({**spec, "AlarmName": name, "Dimensions": dims, "AlarmDescription": description})
    return specs


def verdict_dimensions(endpoint: str, config: str) -> list[dict[str, str]]:
    return [{"Name": "EndpointName", "Value": endpoint}, {"Name": "EndpointConfigName", "Value": config}]


def alarm_specs(upload: Upload, settings: Settings, variant: str | None = None) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the 5XX-rate and latency alarms, plus the verdict alarm when
    CANARY_VERDICT=msprt (pure). `variant` is the new config's production variant name, which is the live
    endpoint's (create_endpoint_config); the EndpointConfigName dimension is what singles out the new fleet."""
    dimensions = [
        {"Name": "EndpointName", "Value": upload.endpoint_name},
        {"Name": "VariantName", "Value": variant or settings.production_variant_name},
        {"Name": "EndpointConfigName", "Value": upload.names.endpoint_config},
    ]
    common: dict[str, Any] = {
        "ActionsEnabled": False,  # SageMaker reads the state itself; no alarm actions needed
        "Namespace": NAMESPACE,
        "Dimensions": dimensions,
        "Period": settings.alarm_period_seconds,
        "EvaluationPeriods": settings.alarm_evaluation_periods,
        "DatapointsToAlarm": settings.alarm_datapoints_to_alarm or settings.alarm_evaluation_periods,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
    }
    model = f"{upload.model_name}/{upload.model_version}"
    errors = {
        **common,
        "AlarmName": upload.names.error_alarm,
        "AlarmDescription": f"Guardrail: 5XX rate of {model} on {upload.endpoint_name} (new fleet)",
        "MetricName": "Invocation5XXErrors",
        "Statistic": "Average",
        "Threshold": settings.error_rate_threshold,
    }
    latency: dict[str, Any] = {
        **common,
        "AlarmName": upload.names.latency_alarm,
        "AlarmDescription": f"Guardrail: ModelLatency (µs) of {model} on {upload.endpoint_name} (new fleet)",
        "MetricName": "ModelLatency",
        "Threshold": settings.latency_threshold_micros,
    }
    if settings.latency_statistic.startswith("p"):
        latency["ExtendedStatistic"] = settings.latency_statistic
    else:
        latency["Statistic"] = settings.latency_statistic
    if settings.canary_verdict != "msprt":
        return [errors, latency]
    verdict: dict[str, Any] = {
        **common,
        "AlarmName": verdict_alarm_name(upload),
        "AlarmDescription": f"Guardrail: sequential canary verdict rejected {model} on {upload.endpoint_name}",
        "Namespace": VERDICT_NAMESPACE,
        "MetricName": VERDICT_METRIC,
        "Dimensions": verdict_dimensions(upload.endpoint_name, upload.names.endpoint_config),
        "Statistic": "Maximum",
        "Threshold": 1.0,
        "EvaluationPeriods": 1,  # one REJECT is the whole decision
        "DatapointsToAlarm": 1,
    }
    return [errors, latency, verdict]


def ensure_alarms(upload: Upload, settings: Settings, variant: str | None = None) -> AlarmsState:
    specs = alarm_specs(upload, settings, variant)
    watch = watch_specs(specs, upload)
    names = [s["AlarmName"] for s in specs]
    watch_names = [s["AlarmName"] for s in watch]
    before = cloudwatch.describe_alarms(names + watch_names)
    for spec in specs + watch:
        cloudwatch.put_metric_alarm(spec)
    after = cloudwatch.describe_alarms(names + watch_names)
    missing = [n for n in names + watch_names if n not in after]
    if missing:
        raise AlarmNotFound(f"alarm(s) not found after put_metric_alarm: {', '.join(missing)}")
    return AlarmsState(
        error_alarm=names[0],
        latency_alarm=names[1],
        verdict_alarm=names[2] if len(names) > 2 else None,
        names=names,
        watch_names=watch_names,
        created=[n for n in names + watch_names if n not in before],
        existed=[n for n in names + watch_names if n in before],
    )
