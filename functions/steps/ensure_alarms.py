"""ensure_alarms: the rollback alarms, scoped to the NEW fleet, verified to exist.

The `EndpointConfigName` dimension makes each alarm watch only the green fleet (SageMaker publishes it for the
new config during a deployment); an alarm on the whole variant would also watch the old fleet.
`Invocation5XXErrors` is 0/1 per request, so its Average is an error rate; so is `Invocation4XXErrors`'s, and the
4XX alarm (metric math) watches the new fleet's rate minus the old fleet's (issue 11 §2).
The verdict alarm carries the canary's sequential verdict: check_deployment publishes `Regression=1` under
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


def client_error_alarm_name(upload: Upload) -> str:
    return f"guardrail-{upload.endpoint_name}-{upload.names.endpoint_config}-4xx-rate"


def client_error_spec(
    upload: Upload, settings: Settings, variant: str, old_config: str | None, common: dict[str, Any]
) -> dict[str, Any]:
    """Metric math: the new fleet's Invocation4XXErrors rate minus the old fleet's, >= ErrorRateThreshold.

    A new fleet answering 400 to requests the old fleet answered (e.g. a model expecting other columns: the
    container cannot score the payload) is a regression a 5XX alarm never sees; clients' own bad requests reach
    both fleets alike and cancel out. `FILL(FILL(old, REPEAT), 0)`: after the full shift the old fleet stops
    publishing and its last rate stands; with no old-fleet datapoint in the range (first deployment, or an old
    fleet that served nothing) it counts as 0. Both series are Average of a 0/1 metric, i.e. rates.
    SageMaker's AutoRollbackConfiguration takes "CloudWatch alarms in your account" by name and reads their state
    (DescribeAlarms): nothing in the API or the guide restricts it to single-metric alarms (docs/aws.md)."""

    def rate(qid: str, config: str) -> dict[str, Any]:
        dims = [
            {"Name": "EndpointName", "Value": upload.endpoint_name},
            {"Name": "VariantName", "Value": variant},
            {"Name": "EndpointConfigName", "Value": config},
        ]
        return {
            "Id": qid,
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": "Invocation4XXErrors", "Dimensions": dims},
                "Period": settings.alarm_period_seconds,
                "Stat": "Average",
            },
            "ReturnData": False,
        }

    metrics = [rate("new_fleet", upload.names.endpoint_config)]
    expression = "new_fleet"
    if old_config:
        metrics.append(rate("old_fleet", old_config))
        expression = "new_fleet - FILL(FILL(old_fleet, REPEAT), 0)"
    metrics.append(
        {
            "Id": "regression",
            "Expression": expression,
            "Label": "4XX rate above the old fleet's",
            "ReturnData": True,
        }
    )
    shared = {k: v for k, v in common.items() if k not in ("Namespace", "Dimensions", "Period")}
    model = f"{upload.model_name}/{upload.model_version}"
    return {
        **shared,
        "AlarmName": client_error_alarm_name(upload),
        "AlarmDescription": (
            f"Guardrail: 4XX rate of {model} on {upload.endpoint_name} (new fleet) minus the old fleet's "
            f"({old_config or 'none'})"
        ),
        "Metrics": metrics,
        "Threshold": settings.error_rate_threshold,
    }


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
        description = spec["AlarmDescription"].replace(
            "(new fleet)", "(post-deployment watch, whole variant)"
        )
        specs.append({**spec, "AlarmName": name, "Dimensions": dims, "AlarmDescription": description})
    return specs


def verdict_dimensions(endpoint: str, config: str) -> list[dict[str, str]]:
    return [{"Name": "EndpointName", "Value": endpoint}, {"Name": "EndpointConfigName", "Value": config}]


def alarm_specs(
    upload: Upload, settings: Settings, variant: str | None = None, old_config: str | None = None
) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the 5XX-rate, latency and relative 4XX-rate alarms, plus the verdict alarm
    when CANARY_VERDICT=msprt (pure). `variant` is the new config's production variant name, which is the live
    endpoint's (create_endpoint_config); the EndpointConfigName dimension is what singles out the new fleet.
    `old_config` is the config the endpoint serves (the update's old fleet), None for a new endpoint."""
    variant = variant or settings.production_variant_name
    dimensions = [
        {"Name": "EndpointName", "Value": upload.endpoint_name},
        {"Name": "VariantName", "Value": variant},
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
    client_errors = client_error_spec(upload, settings, variant, old_config, common)
    if settings.canary_verdict != "msprt":
        return [errors, latency, client_errors]
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
    return [errors, latency, client_errors, verdict]


def ensure_alarms(
    upload: Upload, settings: Settings, variant: str | None = None, old_config: str | None = None
) -> AlarmsState:
    specs = alarm_specs(upload, settings, variant, old_config)
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
        client_error_alarm=client_error_alarm_name(upload),
        verdict_alarm=verdict_alarm_name(upload) if verdict_alarm_name(upload) in names else None,
        names=names,
        watch_names=watch_names,
        created=[n for n in names + watch_names if n not in before],
        existed=[n for n in names + watch_names if n in before],
    )
