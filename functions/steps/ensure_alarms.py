"""ensure_alarms: the two rollback alarms, scoped to the NEW fleet, verified to exist.

The `EndpointConfigName` dimension makes each alarm watch only the green fleet (SageMaker publishes it for the
new config during a deployment); an alarm on the whole variant would also watch the old fleet.
`Invocation5XXErrors` is 0/1 per request, so its Average is an error rate.
"""

from __future__ import annotations

from typing import Any

from functions.adapters import cloudwatch
from functions.config import Settings
from functions.errors import AlarmNotFound
from functions.models import AlarmsState, Upload

NAMESPACE = "AWS/SageMaker"


def alarm_specs(upload: Upload, settings: Settings) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the 5XX-rate and latency alarms (pure)."""
    dimensions = [
        {"Name": "EndpointName", "Value": upload.endpoint_name},
        {"Name": "VariantName", "Value": upload.names.variant},
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
    return [errors, latency]


def ensure_alarms(upload: Upload, settings: Settings) -> AlarmsState:
    specs = alarm_specs(upload, settings)
    names = [s["AlarmName"] for s in specs]
    before = cloudwatch.describe_alarms(names)
    for spec in specs:
        cloudwatch.put_metric_alarm(spec)
    after = cloudwatch.describe_alarms(names)
    missing = [n for n in names if n not in after]
    if missing:
        raise AlarmNotFound(f"alarm(s) not found after put_metric_alarm: {', '.join(missing)}")
    return AlarmsState(
        error_alarm=names[0],
        latency_alarm=names[1],
        names=names,
        created=[n for n in names if n not in before],
        existed=[n for n in names if n in before],
    )
