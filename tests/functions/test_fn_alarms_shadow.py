"""ensure_alarms (moto CloudWatch), shadow analysis on real metric data (moto), and the inference experiment
calls through botocore's Stubber."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from fn_support import ENDPOINT, FakeContext, load_state

from functions import errors
from functions.adapters import cloudwatch, sagemaker
from functions.config import load_settings, settings_from
from functions.models import AlarmsState, ShadowState, VariantStats, Verdict
from functions.steps.shadow_analysis import analyze, decide
from functions.steps.shadow_test import check_shadow_test, conclude_shadow_test, start_shadow_test

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# --- ensure_alarms ---------------------------------------------------------------------------------------
def test_alarms_created_scoped_to_new_fleet_and_idempotent(aws) -> None:
    from functions.handlers.ensure_alarms import handler

    doc = load_state("ensure_alarms")
    names = doc["upload"]["names"]
    first = AlarmsState.model_validate(handler(doc, FakeContext()))
    client_errors = f"guardrail-{ENDPOINT}-{names['endpoint_config']}-4xx-rate"  # issue 11 §2
    assert first.names == [names["error_alarm"], names["latency_alarm"], client_errors] and first.existed == []
    assert first.created == first.names + first.watch_names  # the watch's alarms (aws-audit #11)
    alarms = {a["AlarmName"]: a for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    errors_alarm, latency_alarm = alarms[names["error_alarm"]], alarms[names["latency_alarm"]]
    dims = {d["Name"]: d["Value"] for d in errors_alarm["Dimensions"]}
    assert dims == {
        "EndpointName": ENDPOINT,
        "VariantName": "AllTraffic",  # no endpoint_config in the document: a new endpoint's name
        "EndpointConfigName": names["endpoint_config"],
    }
    assert (errors_alarm["MetricName"], errors_alarm["Statistic"], errors_alarm["Threshold"]) == (
        "Invocation5XXErrors",
        "Average",
        0.05,
    )
    assert (latency_alarm["MetricName"], latency_alarm["Statistic"], latency_alarm["Threshold"]) == (
        "ModelLatency",
        "Average",
        200000,
    )
    for alarm in (errors_alarm, latency_alarm):
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching" and alarm["Namespace"] == "AWS/SageMaker"
    second = AlarmsState.model_validate(handler(doc, FakeContext()))
    assert second.created == [] and second.existed == first.names + first.watch_names


def test_latency_alarm_on_a_percentile(aws, monkeypatch) -> None:
    from functions.config import reset_settings
    from functions.steps.ensure_alarms import alarm_specs

    monkeypatch.setenv("LATENCY_STATISTIC", "p99")
    reset_settings()
    from functions.models import EnsureAlarmsInput

    spec = alarm_specs(EnsureAlarmsInput.model_validate(load_state("ensure_alarms")).upload, load_settings())[
        1
    ]
    assert spec["ExtendedStatistic"] == "p99" and "Statistic" not in spec


def test_alarm_not_found_when_describe_cannot_see_it() -> None:
    from functions.handlers.ensure_alarms import handler

    empty = {"MetricAlarms": [], "CompositeAlarms": []}
    with Stubber(cloudwatch.client()) as cw:
        cw.add_response("describe_alarms", empty)
        for _ in range(5):  # three rollback alarms (5XX, latency, relative 4XX), two watch alarms
            cw.add_response("put_metric_alarm", {})
        cw.add_response("describe_alarms", empty)
        with pytest.raises(errors.AlarmNotFound, match="not found after put_metric_alarm"):
            handler(load_state("ensure_alarms"), FakeContext())


# --- shadow analysis ---------------------------------------------------------------------------------------
def _stats(
    variant: str, n: float, errors_: float, latency: float | None, p99: float | None = None
) -> VariantStats:
    return VariantStats(
        variant=variant,
        invocations=n,
        errors_5xx=errors_,
        error_rate=errors_ / n if n else None,
        latency_avg_us=latency,
        latency_p99_us=p99,
    )


@pytest.mark.parametrize(
    ("prod", "shadow", "verdict", "reason"),
    [
        (_stats("p", 100, 0, 2000), _stats("s", 100, 0, 2100), Verdict.PROMOTE, "latency within"),
        (_stats("p", 100, 0, 2000), _stats("s", 100, 10, 2000), Verdict.REJECT, "5XX rate 10.00%"),
        (_stats("p", 100, 0, 2000), _stats("s", 100, 0, 9000), Verdict.REJECT, "average latency"),
        (_stats("p", 100, 0, 2000), _stats("s", 100, 0, 5000), Verdict.PROMOTE, "latency within"),  # < slack
        (_stats("p", 100, 0, 2000, 3000), _stats("s", 100, 0, 2000, 9000), Verdict.REJECT, "p99 latency"),
        (_stats("p", 100, 0, 2000), _stats("s", 5, 0, 2000), Verdict.INCONCLUSIVE, "not enough traffic"),
        (_stats("p", 0, 0, None), _stats("s", 0, 0, None), Verdict.INCONCLUSIVE, "not enough traffic"),
    ],
)
def test_decide(prod, shadow, verdict, reason) -> None:
    got, reasons = decide(prod, shadow, load_settings())
    assert got is verdict and reason in reasons[0]


def _put_requests(cw, variant: str, latencies: list[float], failures: int, at: datetime) -> None:
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
    data = []
    for i, latency in enumerate(latencies):
        ts = at + timedelta(seconds=i % 50)
        data.append(
            {
                "MetricName": "Invocation5XXErrors",
                "Dimensions": dims,
                "Timestamp": ts,
                "Value": 1.0 if i < failures else 0.0,
                "StorageResolution": 1,
            }
        )
        data.append(
            {
                "MetricName": "ModelLatency",
                "Dimensions": dims,
                "Timestamp": ts,
                "Value": latency,
                "Unit": "Microseconds",
                "StorageResolution": 1,
            }
        )
        # The same request under the EndpointConfigName dimension set must not be counted twice.
        data.append(
            {
                "MetricName": "Invocation5XXErrors",
                "Timestamp": ts,
                "StorageResolution": 1,
                "Dimensions": [*dims, {"Name": "EndpointConfigName", "Value": "cfg"}],
                "Value": 1.0 if i < failures else 0.0,
            }
        )
    for start in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[start : start + 500])


def test_analyze_reads_both_variants(aws) -> None:
    cw = boto3.client("cloudwatch")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    _put_requests(cw, "prod", [2000.0] * 40, failures=0, at=start + timedelta(seconds=5))
    _put_requests(cw, "shadow", [2500.0] * 30 + [3500.0] * 10, failures=8, at=start + timedelta(seconds=5))
    result = analyze(ENDPOINT, "prod", "shadow", start, start + timedelta(minutes=3), load_settings())
    assert result.production.invocations == 40 and result.production.error_rate == 0
    assert result.shadow.invocations == 40 and result.shadow.errors_5xx == 8
    assert result.shadow.latency_avg_us == pytest.approx(2750.0)
    assert result.verdict is Verdict.REJECT and "5XX rate 20.00%" in result.reasons[0]
    empty = analyze(ENDPOINT, "prod", "nobody", start, start + timedelta(minutes=3), load_settings())
    assert empty.verdict is Verdict.INCONCLUSIVE and empty.shadow.invocations == 0


# --- inference experiment ----------------------------------------------------------------------------------
@pytest.fixture
def sm() -> Stubber:
    with Stubber(sagemaker.client()) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _endpoint(config: str = "xgb-best-1-cfg") -> dict:
    return {
        "EndpointName": ENDPOINT,
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e",
        "EndpointConfigName": config,
        "EndpointStatus": "InService",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }


def _endpoint_config() -> dict:
    return {
        "EndpointConfigName": "xgb-best-1-cfg",
        "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:ec/x",
        "CreationTime": NOW,
        "ProductionVariants": [
            {
                "VariantName": "v-xgb-best-1",
                "ModelName": "xgb-best-1",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    }


def test_start_creates_a_shadow_experiment(sm) -> None:
    from functions.models import StartShadowTestInput

    upload = StartShadowTestInput.model_validate(load_state("start_shadow_test")).upload
    sm.add_response("describe_endpoint", _endpoint())
    sm.add_response("describe_endpoint_config", _endpoint_config())
    infra = {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    sm.add_response(
        "create_inference_experiment",
        {"InferenceExperimentArn": "arn:exp"},
        {
            "Name": upload.names.experiment,
            "Type": "ShadowMode",
            "Schedule": {"StartTime": NOW, "EndTime": NOW + timedelta(seconds=120 + 600)},
            "Description": ANY,
            "RoleArn": load_settings().shadow_experiment_role_arn,  # not the model role (aws-audit #3)
            "EndpointName": ENDPOINT,
            "ModelVariants": [
                {"ModelName": "xgb-best-1", "VariantName": "v-xgb-best-1", "InfrastructureConfig": infra},
                {
                    "ModelName": upload.names.model,
                    "VariantName": upload.names.shadow_variant,
                    "InfrastructureConfig": infra,
                },
            ],
            "DataStorageConfig": {"Destination": load_settings().data_capture_uri},
            "ShadowModeConfig": {
                "SourceModelVariantName": "v-xgb-best-1",
                "ShadowModelVariants": [
                    {"ShadowModelVariantName": upload.names.shadow_variant, "SamplingPercentage": 100}
                ],
            },
        },
    )
    state = start_shadow_test(upload, load_settings(), now=NOW)
    assert state.status == "RUNNING" and state.production_model == "xgb-best-1"
    assert state.ends_at == (NOW + timedelta(seconds=120)).isoformat()


def test_start_skips_without_an_endpoint(sm) -> None:
    from functions.handlers.start_shadow_test import handler

    sm.add_client_error("describe_endpoint", "ValidationException", f'Could not find endpoint "{ENDPOINT}".')
    out = ShadowState.model_validate(handler(load_state("start_shadow_test"), FakeContext()))
    assert out.status == "SKIPPED" and "no endpoint" in out.skipped_reason


def _running() -> ShadowState:
    return ShadowState.model_validate(load_state("check_shadow_test")["shadow"])


def _experiment(status: str, reason: str | None = None) -> dict:
    out = {
        "Arn": "arn:exp",
        "Name": _running().experiment_name,
        "Type": "ShadowMode",
        "Status": status,
        "EndpointMetadata": {"EndpointName": ENDPOINT},
        "ModelVariants": [],
    }
    if reason:
        out["StatusReason"] = reason
    return out


def test_check_runs_until_the_window_ends(sm, monkeypatch) -> None:
    from functions.models import ShadowAnalysis
    from functions.steps import shadow_test

    seen = []

    def fake_analyze(endpoint, prod, shadow, start, end, settings):
        seen.append((prod, shadow, start, end))
        return ShadowAnalysis(
            verdict=Verdict.PROMOTE,
            production=VariantStats(variant=prod),
            shadow=VariantStats(variant=shadow),
        )

    monkeypatch.setattr(shadow_test, "analyze", fake_analyze)
    running = _running()
    starts = datetime.fromisoformat(running.starts_at)
    sm.add_response("describe_inference_experiment", _experiment("Running"))
    mid = check_shadow_test(running, load_settings(), now=starts + timedelta(seconds=30))
    assert not mid.done and mid.verdict is None and mid.attempts == 1
    sm.add_response("describe_inference_experiment", _experiment("Running"))
    end = check_shadow_test(mid, load_settings(), now=starts + timedelta(seconds=500))
    assert end.done and end.verdict is Verdict.PROMOTE and end.status == "ENDED"
    assert seen[-1][3] == datetime.fromisoformat(running.ends_at)  # analysis stops at the window's end
    sm.add_response("describe_inference_experiment", _experiment("Cancelled", "internal error"))
    cancelled = check_shadow_test(mid, load_settings(), now=starts + timedelta(seconds=40))
    assert cancelled.done and cancelled.verdict is Verdict.REJECT
    assert "cancelled: internal error" in cancelled.analysis.reasons[0]


@pytest.mark.parametrize(
    ("verdict", "actions"),
    [
        ("PROMOTE", {"shadow": "Promote", "prod": "Remove"}),
        ("REJECT", {"shadow": "Remove", "prod": "Retain"}),
        ("INCONCLUSIVE", {"shadow": "Remove", "prod": "Retain"}),
    ],
)
def test_conclude_promotes_or_removes(sm, verdict, actions) -> None:
    from functions.handlers.conclude_shadow_test import handler

    doc = load_state("conclude_shadow_test")
    doc["shadow"]["verdict"] = verdict
    shadow = doc["shadow"]
    expected = {
        shadow["shadow_variant"] if k == "shadow" else shadow["production_variant"]: v
        for k, v in actions.items()
    }
    sm.add_response("describe_inference_experiment", _experiment("Running"))
    sm.add_response(
        "stop_inference_experiment",
        {"InferenceExperimentArn": "arn:exp"},
        {
            "Name": shadow["experiment_name"],
            "ModelVariantActions": expected,
            "DesiredState": "Completed",
            "Reason": ANY,
        },
    )
    out = ShadowState.model_validate(handler(doc, FakeContext()))
    assert out.status == "CONCLUDED" and out.actions == expected and out.verdict == verdict


def test_conclude_is_safe_to_retry_and_refuses_late_promotion(sm) -> None:
    doc = ShadowState.model_validate(load_state("conclude_shadow_test")["shadow"])
    sm.add_response(
        "describe_inference_experiment", _experiment("Completed", "Guardrail verdict PROMOTE: ok")
    )
    sm.add_response("describe_endpoint", {  # the settle check reads the endpoint after the experiment ended
        "EndpointName": doc.endpoint_name, "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
        "EndpointConfigName": "c", "EndpointStatus": "InService", "CreationTime": "2026-11-29T00:00:00Z",
        "LastModifiedTime": "2026-11-29T00:00:00Z"})  # fmt: skip
    concluded = conclude_shadow_test(doc)  # no second StopInferenceExperiment (none is stubbed)
    assert concluded.status == "CONCLUDED" and concluded.settled
    sm.add_response("describe_inference_experiment", _experiment("Completed", "schedule ended"))
    with pytest.raises(errors.DeploymentFailed, match="can no longer be promoted"):
        conclude_shadow_test(doc)


def test_settings_override_shadow_thresholds() -> None:
    strict = settings_from({"SHADOW_MAX_LATENCY_RATIO": "1.01", "SHADOW_LATENCY_SLACK_MICROS": "0"})
    verdict, _ = decide(_stats("p", 100, 0, 2000), _stats("s", 100, 0, 2100), strict)
    assert verdict is Verdict.REJECT
