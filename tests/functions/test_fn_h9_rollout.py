"""Issue 9 part 2 at the function level (reviews/aws-audit.md rows 7, 8, 12, 13, 18); docs/aws.md maps rows to tests.

- Row 18: MaximumExecutionTimeoutInSeconds counts every bake (canary: canary + final bake; linear: n + 1) plus a
  provisioning margin, clamped to 600-28800; row 7: the poll budget follows from that timeout.
- Row 13: a publish frequency other than 60 s goes into CreateEndpointConfig's MetricsConfig.
- Row 12: an inference experiment never outlives AWS's 30 days.
- Rows 7/8: a rollback and a shadow conclusion are followed until SageMaker has finished; any failure after the
  experiment started stops it with the shadow Removed and production Retained.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import ANY, Stubber
from fn_support import ENDPOINT

from functions.adapters import sagemaker
from functions.config import Settings
from functions.errors import DeploymentFailed
from functions.models import DeploymentRequest, DeploymentState, ShadowState, WatchState
from functions.steps import deploy as d
from functions.steps import rollback as rb
from functions.steps import shadow_test as st

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ALARMS = ["a-5xx", "a-latency"]


@pytest.fixture
def sm() -> Stubber:
    with Stubber(sagemaker.client()) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _timeout(strategy: str, wait: int, term: int, floor: int = 600, linear: int = 25) -> int:
    config = d.build_deployment_config(
        strategy, canary_percent=25, linear_step_percent=linear, wait_interval_seconds=wait,
        termination_wait_seconds=term, max_execution_timeout_seconds=floor, alarm_names=ALARMS,
    )  # fmt: skip
    return config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"]


# --- row 18 --------------------------------------------------------------------------------------------------
def test_canary_timeout_counts_the_canary_bake_and_the_final_bake():
    # AWS: a canary deployment bakes the canary and then has "a final baking period" after the full shift.
    assert _timeout("CANARY", 1800, 600) == 2 * 1800 + 600 + d.PROVISIONING_MARGIN_SECONDS


def test_linear_timeout_counts_n_plus_one_bakes():
    assert _timeout("LINEAR", 600, 120, linear=25) == (4 + 1) * 600 + 120 + d.PROVISIONING_MARGIN_SECONDS
    assert _timeout("LINEAR", 600, 120, linear=30) == (4 + 1) * 600 + 120 + d.PROVISIONING_MARGIN_SECONDS


def test_all_at_once_timeout_and_clamps():
    assert _timeout("ALL_AT_ONCE", 300, 120) == 300 + 120 + d.PROVISIONING_MARGIN_SECONDS
    assert _timeout("ALL_AT_ONCE", 0, 0) == max(600, d.PROVISIONING_MARGIN_SECONDS)
    assert _timeout("ALL_AT_ONCE", 0, 0, floor=7200) == 7200  # the template's value is a floor
    # Bakes that fit but leave less than the margin: clamped to SageMaker's maximum, not refused.
    assert _timeout("LINEAR", 3400, 1000, linear=15) == 28800  # 8 bakes + term = 28200: fits, margin clamped
    with pytest.raises(Exception, match="28800"):
        _timeout("LINEAR", 3600, 3600, linear=10)  # 11 bakes of an hour can never fit


def test_poll_budget_outlasts_sagemakers_own_timeout():
    settings = Settings(poll_interval_seconds=30, max_poll_attempts=120, wait_interval_seconds=1800,
                        termination_wait_seconds=600, max_execution_timeout_seconds=3600)  # fmt: skip
    timeout = _timeout("CANARY", 1800, 600)
    poll, attempts = d.poll_budget(timeout, settings)
    assert poll * attempts >= timeout + d.ROLLBACK_MARGIN_SECONDS  # SageMaker gives up (and rolls back) first
    assert attempts <= d.MAX_POLLS  # Step Functions' 25,000-event history
    # Tiny poll intervals with the longest timeout: polls spread out instead of overflowing the history.
    fast = Settings(poll_interval_seconds=1, max_poll_attempts=60)
    poll, attempts = d.poll_budget(28800, fast)
    assert attempts <= d.MAX_POLLS and poll * attempts >= 28800 + d.ROLLBACK_MARGIN_SECONDS


def test_update_carries_its_poll_budget(sm, monkeypatch):
    from fn_support import load_state

    from functions.models import AlarmsState, Upload

    upload = Upload.model_validate(load_state("deploy")["upload"])
    settings = Settings(poll_interval_seconds=2, max_poll_attempts=60, wait_interval_seconds=20,
                        termination_wait_seconds=2, max_execution_timeout_seconds=600)  # fmt: skip
    sm.add_response("describe_endpoint", {
        "EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": "old-cfg", "EndpointStatus": "InService", "CreationTime": NOW,
        "LastModifiedTime": NOW, "ProductionVariants": [{"VariantName": "AllTraffic"}],
    }, {"EndpointName": ENDPOINT})  # fmt: skip
    sm.add_response("update_endpoint", {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"})
    alarms = AlarmsState(error_alarm=ALARMS[0], latency_alarm=ALARMS[1], names=ALARMS, existed=ALARMS)
    state = d.deploy(upload, alarms, settings)
    timeout = state.deployment_config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"]
    assert state.poll_seconds * state.max_attempts >= timeout + d.ROLLBACK_MARGIN_SECONDS
    assert state.max_attempts > settings.max_poll_attempts  # 60 x 2 s would give up before SageMaker


# --- row 13 --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("frequency,sent", [(10, {"EnableEnhancedMetrics": True, "MetricPublishFrequencyInSeconds": 10}), (60, None)])
def test_publish_frequency_reaches_create_endpoint_config(sm, frequency, sent):
    expected = {"EndpointConfigName": "cfg", "ProductionVariants": ANY, "DataCaptureConfig": ANY}
    if sent:
        expected["MetricsConfig"] = sent  # Stubber also validates it against botocore's model
    sm.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:::endpoint-config/cfg"},
                    expected)  # fmt: skip
    sagemaker.create_endpoint_config(
        "cfg", variant_name="AllTraffic", model_name="m", instance_type="ml.m5.large", instance_count=1,
        data_capture_uri="s3://b/data-capture", metric_publish_frequency_seconds=frequency,
    )  # fmt: skip


# --- row 12 --------------------------------------------------------------------------------------------------
def test_experiment_schedule_never_exceeds_30_days():
    start = NOW
    for duration in (3600, 10 * 86400, 15 * 86400):
        end = st.schedule_end(start, duration)
        assert end - start <= timedelta(days=30)
        assert end >= start + timedelta(seconds=duration)  # the analysis window still fits


def test_deployment_json_cannot_ask_for_a_longer_shadow_test():
    with pytest.raises(ValueError):
        DeploymentRequest.model_validate({"shadow": {"enabled": True, "duration_seconds": 16 * 86400}})
    DeploymentRequest.model_validate({"shadow": {"enabled": True, "duration_seconds": 15 * 86400}})


# --- row 7: rollback followed until done --------------------------------------------------------------------
def _deployment() -> DeploymentState:
    return DeploymentState(mode="UPDATE", endpoint_name=ENDPOINT, target_config="new-cfg",
                           previous_config="old-cfg", status="SUCCEEDED")  # fmt: skip


def _endpoint(config: str, status: str, pending: str | None = None) -> dict:
    out = {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:us-east-1:1:endpoint/{ENDPOINT}",
           "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": NOW, "LastModifiedTime": NOW}  # fmt: skip
    if pending:
        out["PendingDeploymentSummary"] = {"EndpointConfigName": pending}
    return out


def test_rollback_is_settled_only_when_the_endpoint_serves_the_old_config(sm):
    sm.add_response("describe_endpoint", _endpoint("new-cfg", "InService"), {"EndpointName": ENDPOINT})
    sm.add_response(
        "update_endpoint", {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"},
        {"EndpointName": ENDPOINT, "EndpointConfigName": "old-cfg", "DeploymentConfig": rb.ROLLBACK_CONFIG},
    )
    first = rb.rollback(_deployment(), WatchState(alarm=True))
    assert first.rolled_back and not first.settled and first.rollback_polls == 0
    sm.add_response("describe_endpoint", _endpoint("new-cfg", "Updating", pending="old-cfg"), {"EndpointName": ENDPOINT})
    second = rb.rollback(_deployment(), first)
    assert not second.settled and second.rollback_polls == 1 and second.endpoint_status == "Updating"
    sm.add_response("describe_endpoint", _endpoint("old-cfg", "InService"), {"EndpointName": ENDPOINT})
    third = rb.rollback(_deployment(), second)
    assert third.settled and third.rollback_polls == 2


def test_rollback_that_did_not_take_fails_instead_of_retrying_forever(sm):
    watch = WatchState(alarm=True, rolled_back=True, rollback_config="old-cfg", rollback_polls=3)
    sm.add_response("describe_endpoint", _endpoint("new-cfg", "InService"), {"EndpointName": ENDPOINT})
    with pytest.raises(DeploymentFailed, match="did not take"):
        rb.rollback(_deployment(), watch)


# --- rows 7/8: the shadow conclusion followed until done, and the cleanup ------------------------------------
def _shadow(**extra) -> ShadowState:
    return ShadowState(status="ENDED", experiment_name="exp", endpoint_name=ENDPOINT, production_variant="AllTraffic",
                       shadow_variant="shadow-v2", shadow_model="m2", sampling_percent=100, done=True,
                       verdict="PROMOTE", **extra)  # fmt: skip


def _experiment(status: str, reason: str = "") -> dict:
    return {"Arn": "arn:aws:sagemaker:us-east-1:1:inference-experiment/exp", "Name": "exp", "Type": "ShadowMode",
            "Status": status, "StatusReason": reason, "EndpointMetadata": {"EndpointName": ENDPOINT},
            "ModelVariants": [], "ShadowModeConfig": {"SourceModelVariantName": "AllTraffic",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow-v2", "SamplingPercentage": 100}]}}  # fmt: skip


def test_conclusion_is_settled_when_the_experiment_ended_and_the_endpoint_is_in_service(sm):
    sm.add_response("describe_inference_experiment", _experiment("Running"), {"Name": "exp"})
    sm.add_response("stop_inference_experiment",
                    {"InferenceExperimentArn": "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp"})
    first = st.conclude_shadow_test(_shadow())
    assert not first.settled and first.stop_polls == 0
    sm.add_response("describe_inference_experiment", _experiment("Stopping", "Guardrail verdict PROMOTE"), {"Name": "exp"})
    sm.add_response("describe_endpoint", _endpoint("cfg", "Updating"), {"EndpointName": ENDPOINT})
    second = st.conclude_shadow_test(first)
    assert not second.settled and second.stop_polls == 1
    sm.add_response("describe_inference_experiment", _experiment("Completed", "Guardrail verdict PROMOTE"), {"Name": "exp"})
    sm.add_response("describe_endpoint", _endpoint("cfg", "Updating"), {"EndpointName": ENDPOINT})
    third = st.conclude_shadow_test(second)
    assert not third.settled  # the experiment is over but the promotion still updates the endpoint
    sm.add_response("describe_inference_experiment", _experiment("Completed", "Guardrail verdict PROMOTE"), {"Name": "exp"})
    sm.add_response("describe_endpoint", _endpoint("cfg", "InService"), {"EndpointName": ENDPOINT})
    assert st.conclude_shadow_test(third).settled


def test_abort_removes_the_shadow_and_retains_production(sm):
    sm.add_response("describe_inference_experiment", _experiment("Running"), {"Name": "exp"})
    sm.add_response(
        "stop_inference_experiment", {"InferenceExperimentArn": "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp"},
        {"Name": "exp", "ModelVariantActions": {"shadow-v2": "Remove", "AllTraffic": "Retain"},
         "DesiredState": "Completed", "Reason": ANY},
    )  # fmt: skip
    out = st.abort_shadow_test("exp", "Lambda.Unknown: timeout")
    assert out.stopped and out.actions == {"shadow-v2": "Remove", "AllTraffic": "Retain"}


@pytest.mark.parametrize("status", ["Stopping", "Completed", "Cancelled"])
def test_abort_leaves_an_experiment_that_is_already_ending_alone(sm, status):
    sm.add_response("describe_inference_experiment", _experiment(status), {"Name": "exp"})
    assert not st.abort_shadow_test("exp", "boom").stopped


def test_abort_without_an_experiment_is_a_no_op(sm):
    sm.add_client_error("describe_inference_experiment", "ResourceNotFound", "not found")
    out = st.abort_shadow_test("exp", "boom")
    assert not out.stopped and out.experiment_status is None
