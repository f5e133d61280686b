"""Fixes of reviews/aws-audit.md (issue 9) at the function level; docs/aws.md maps each row to its test.

Row 1: the production variant keeps one name for the life of the endpoint (AWS: "your new endpoint configuration
must have the same variant name as the old endpoint configuration", deployment-guardrails-exclusions.html);
only a shadow variant gets a name of its own. Versions are told apart by endpoint config and model name.
"""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber
from fn_support import ENDPOINT, FakeContext, load_state

from functions import errors
from functions.adapters import sagemaker
from functions.config import load_settings, reset_settings
from functions.models import AlarmsState, EndpointConfigResource, EnsureAlarmsInput, Upload
from functions.steps.names import resource_names

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CFG_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/"


@pytest.fixture
def sm() -> Stubber:
    with Stubber(sagemaker.client()) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _live(config: str, variant: str, status: str = "InService") -> dict:
    return {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        "ProductionVariants": [{"VariantName": variant, "CurrentWeight": 1.0}],
    }


def _config_request(name: str, variant: str, model: str) -> dict:
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": variant,
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2,
                "InitialVariantWeight": 1.0,
            }
        ],
        "DataCaptureConfig": ANY,
    }


# --- row 1: names --------------------------------------------------------------------------------------------
def test_names_give_a_unique_variant_name_to_the_shadow_only() -> None:
    a = resource_names(ENDPOINT, "credit", "v1", "k1")
    b = resource_names(ENDPOINT, "credit", "v2", "k2")
    assert "variant" not in a.model_dump()  # no per-version production variant name any more
    assert a.shadow_variant != b.shadow_variant
    assert "AllTraffic" not in (a.shadow_variant, b.shadow_variant)
    assert a.endpoint_config != b.endpoint_config and a.model != b.model


# --- row 1: create_endpoint_config ---------------------------------------------------------------------------
def test_new_config_keeps_the_live_production_variant_name(sm) -> None:
    from functions.handlers.create_endpoint_config import handler

    doc = load_state("create_endpoint_config")
    names = doc["upload"]["names"]
    sm.add_response("describe_endpoint", _live("xgb-best-1-cfg", "Blue"), {"EndpointName": ENDPOINT})
    sm.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": CFG_ARN + names["endpoint_config"]},
        _config_request(names["endpoint_config"], "Blue", names["model"]),
    )
    out = EndpointConfigResource.model_validate(handler(doc, FakeContext()))
    assert out.status == "created" and out.variant == "Blue"


def test_first_config_uses_alltraffic_or_the_setting(sm, monkeypatch) -> None:
    from functions.steps.create_endpoint_config import create_endpoint_config

    upload = Upload.model_validate(load_state("create_endpoint_config")["upload"])
    names = upload.names
    for setting, expected in ((None, "AllTraffic"), ("Main", "Main")):
        if setting:
            monkeypatch.setenv("PRODUCTION_VARIANT_NAME", setting)
            reset_settings()
        sm.add_client_error("describe_endpoint", "ValidationException", f'Could not find endpoint "{ENDPOINT}".')
        sm.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": CFG_ARN + names.endpoint_config},
            _config_request(names.endpoint_config, expected, names.model),
        )
        assert create_endpoint_config(upload, load_settings()).variant == expected


def test_existing_config_with_another_variant_name_is_refused(sm) -> None:
    from functions.steps.create_endpoint_config import create_endpoint_config

    upload = Upload.model_validate(load_state("create_endpoint_config")["upload"])
    names = upload.names
    sm.add_response("describe_endpoint", _live("other-cfg", "AllTraffic"))
    sm.add_client_error(
        "create_endpoint_config",
        "ValidationException",
        f'Cannot create already existing endpoint configuration "{CFG_ARN}{names.endpoint_config}".',
    )
    sm.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": names.endpoint_config,
            "EndpointConfigArn": CFG_ARN + names.endpoint_config,
            "ProductionVariants": [{"VariantName": "Blue", "ModelName": names.model}],
            "CreationTime": NOW,
        },
    )
    with pytest.raises(errors.DeploymentFailed, match=r"variant 'Blue'.*'AllTraffic'"):
        create_endpoint_config(upload, load_settings())


# --- row 1: blue/green configs and the rollback target share the variant name (moto) -------------------------
def test_consecutive_configs_share_the_production_variant_name(aws) -> None:
    from functions.steps.create_endpoint_config import create_endpoint_config

    client = boto3.client("sagemaker")
    settings = load_settings()
    uploads = []
    for version in ("1", "2"):
        base = Upload.model_validate(load_state("create_endpoint_config")["upload"])
        names = resource_names(ENDPOINT, "credit", version, f"key-{version}")
        uploads.append(base.model_copy(update={"names": names, "model_version": version}))
        client.create_model(
            ModelName=names.model,
            ExecutionRoleArn=settings.sagemaker_role_arn,
            PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/k"},
        )
    first = create_endpoint_config(uploads[0], settings)
    client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=uploads[0].names.endpoint_config)
    second = create_endpoint_config(uploads[1], settings)
    variants = [
        client.describe_endpoint_config(EndpointConfigName=u.names.endpoint_config)["ProductionVariants"][0][
            "VariantName"
        ]
        for u in uploads
    ]
    # The update (v1 -> v2) and a post-deployment rollback (v2 -> v1) both keep one production variant name.
    assert variants == ["AllTraffic", "AllTraffic"] == [first.variant, second.variant]


# --- row 1: alarms tell versions apart by endpoint config, on the live variant name --------------------------
def test_alarms_use_the_configs_production_variant_name(aws) -> None:
    from functions.handlers.ensure_alarms import handler

    doc = load_state("ensure_alarms")
    names = doc["upload"]["names"]
    doc["endpoint_config"] = {"name": names["endpoint_config"], "arn": None, "status": "created", "variant": "Blue"}
    state = AlarmsState.model_validate(handler(doc, FakeContext()))
    alarms = {a["AlarmName"]: a for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    for name in state.names[:2]:
        dims = {d["Name"]: d["Value"] for d in alarms[name]["Dimensions"]}
        assert dims == {"EndpointName": ENDPOINT, "VariantName": "Blue", "EndpointConfigName": names["endpoint_config"]}


def test_alarm_specs_default_to_alltraffic_without_endpoint_config() -> None:
    from functions.steps.ensure_alarms import alarm_specs

    doc = EnsureAlarmsInput.model_validate(load_state("ensure_alarms"))
    specs = alarm_specs(doc.upload, load_settings(), variant=None)
    assert {d["Name"]: d["Value"] for d in specs[0]["Dimensions"]}["VariantName"] == "AllTraffic"


# --- rows 2 and 3: start_shadow_test ----------------------------------------------------------------------------
def _config_of(model: str, variant: str) -> dict:
    return {
        "EndpointConfigName": "xgb-best-1-cfg",
        "EndpointConfigArn": CFG_ARN + "xgb-best-1-cfg",
        "CreationTime": NOW,
        "ProductionVariants": [
            {"VariantName": variant, "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    }


def test_shadow_reads_deployment_json_before_the_experiment_exists(sm, monkeypatch) -> None:
    """aws-audit #2: an S3 failure must come before CreateInferenceExperiment, or the experiment is orphaned."""
    from functions.adapters import s3
    from functions.models import StartShadowTestInput
    from functions.steps.shadow_test import start_shadow_test

    monkeypatch.setenv("SHADOW_METHOD", "msprt")
    reset_settings()
    upload = StartShadowTestInput.model_validate(load_state("start_shadow_test")).upload
    sm.add_response("describe_endpoint", _live("xgb-best-1-cfg", "AllTraffic"))
    sm.add_response("describe_endpoint_config", _config_of("xgb-best-1", "AllTraffic"))
    # No create_inference_experiment queued: calling it would be an unexpected call on the Stubber.
    with Stubber(s3.client()) as s3_stub:
        s3_stub.add_client_error("get_object", "AccessDenied", "Access Denied", http_status_code=403)
        with pytest.raises(errors.AwsServiceError, match="AccessDenied"):
            start_shadow_test(upload, load_settings(), now=NOW)
        s3_stub.assert_no_pending_responses()


def test_shadow_experiment_gets_its_own_role(sm) -> None:
    """aws-audit #3: RoleArn is the dedicated experiment role, never the model execution role."""
    from functions.models import StartShadowTestInput
    from functions.steps.shadow_test import start_shadow_test

    settings = load_settings()
    assert settings.shadow_experiment_role_arn and settings.shadow_experiment_role_arn != settings.sagemaker_role_arn
    upload = StartShadowTestInput.model_validate(load_state("start_shadow_test")).upload
    sm.add_response("describe_endpoint", _live("xgb-best-1-cfg", "AllTraffic"))
    sm.add_response("describe_endpoint_config", _config_of("xgb-best-1", "AllTraffic"))
    sm.add_response(
        "create_inference_experiment",
        {"InferenceExperimentArn": "arn:exp"},
        {
            "Name": ANY,
            "Type": "ShadowMode",
            "Schedule": ANY,
            "Description": ANY,
            "RoleArn": settings.shadow_experiment_role_arn,
            "EndpointName": ENDPOINT,
            "ModelVariants": ANY,
            "DataStorageConfig": ANY,
            "ShadowModeConfig": {
                "SourceModelVariantName": "AllTraffic",
                "ShadowModelVariants": [{"ShadowModelVariantName": upload.names.shadow_variant, "SamplingPercentage": 100}],
            },
        },
    )
    state = start_shadow_test(upload, settings, now=NOW)
    assert state.production_variant == "AllTraffic" and state.shadow_variant == upload.names.shadow_variant


# --- row 6: the lock outlives the longest execution -------------------------------------------------------------
@pytest.mark.parametrize("shadow_seconds", [None, 3600, 86400])
def test_lock_lasts_as_long_as_the_execution_can(monkeypatch, shadow_seconds) -> None:
    """aws-audit #6: with prod timings (150 polls x 60 s, 1,800 s watch, a day-long shadow test) a 1 h lock let a
    second upload take the endpoint mid-deployment. The lock's TTL is derived from the same settings the state
    machine runs with, per upload (its strategy and shadow duration)."""
    from functions.steps.deploy import build_deployment_config
    from functions.steps.lock import lock_ttl_seconds

    for key, value in {"POLL_INTERVAL_SECONDS": "60", "MAX_POLL_ATTEMPTS": "150",
                       "POST_DEPLOYMENT_WATCH_SECONDS": "1800", "WAIT_INTERVAL_SECONDS": "600",
                       "TERMINATION_WAIT_SECONDS": "600", "MAX_EXECUTION_TIMEOUT_SECONDS": "7200"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    reset_settings()
    settings = load_settings()
    upload = Upload.model_validate(load_state("acquire_lock")["upload"])
    if shadow_seconds:
        upload = upload.model_copy(
            update={"shadow": upload.shadow.model_copy(update={"enabled": True, "duration_seconds": shadow_seconds})}
        )
    ttl = lock_ttl_seconds(upload, settings)
    timeout = build_deployment_config(
        upload.strategy, canary_percent=upload.canary_percent, linear_step_percent=upload.linear_step_percent,
        wait_interval_seconds=600, termination_wait_seconds=600, max_execution_timeout_seconds=7200,
        alarm_names=["a"],
    )["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"]  # fmt: skip
    deployment = max(150 * 60, timeout) + 1800  # polls (or SageMaker's own timeout), then the watch
    assert ttl >= deployment + (2 * shadow_seconds if shadow_seconds else 0)
    assert ttl <= 40 * 24 * 3600  # bounded: a crashed execution does not hold the endpoint forever


def test_acquired_lock_expires_after_the_derived_ttl(aws) -> None:
    from functions.steps.lock import acquire_lock, lock_ttl_seconds

    boto3.client("dynamodb").create_table(
        TableName="guardrail-locks",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    settings = load_settings()
    upload = Upload.model_validate(load_state("acquire_lock")["upload"])
    state = acquire_lock(upload, "exec-a", settings, now=1000)
    assert state.expires_at == 1000 + lock_ttl_seconds(upload, settings) > 1000 + 3600


# --- row 16: a Failed endpoint is deleted, then re-created --------------------------------------------------------
def test_failed_endpoint_is_deleted_then_recreated(sm) -> None:
    """aws-audit #16: a Failed endpoint can only be deleted; deploy deletes it and asks the state machine to retry
    (EndpointNotReady, retried), and the retry creates the endpoint anew."""
    from functions.models import AlarmsState, DeployInput, DeploymentMode
    from functions.steps.deploy import deploy

    doc = DeployInput.model_validate(load_state("deploy"))
    target = doc.upload.names.endpoint_config
    failed = _live("xgb-best-1-cfg", "AllTraffic", status="Failed") | {"FailureReason": "image not found"}
    sm.add_response("describe_endpoint", failed, {"EndpointName": ENDPOINT})
    sm.add_response("delete_endpoint", {}, {"EndpointName": ENDPOINT})
    with pytest.raises(errors.EndpointNotReady, match=r"Failed.*deleted"):
        deploy(doc.upload, doc.alarms or AlarmsState(error_alarm="a", latency_alarm="b", names=["a", "b"]), load_settings())
    sm.add_response("describe_endpoint", _live("xgb-best-1-cfg", "AllTraffic", status="Deleting"))
    with pytest.raises(errors.EndpointNotReady, match="Deleting"):
        deploy(doc.upload, doc.alarms, load_settings())
    sm.add_client_error("describe_endpoint", "ValidationException", f'Could not find endpoint "{ENDPOINT}".')
    sm.add_response(
        "create_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"},
        {"EndpointName": ENDPOINT, "EndpointConfigName": target},
    )
    state = deploy(doc.upload, doc.alarms, load_settings())
    assert state.mode is DeploymentMode.CREATE and state.target_config == target


# --- row 11: the post-deployment watch -------------------------------------------------------------------------
def test_watch_alarms_watch_the_variant_without_the_config_dimension(aws) -> None:
    """aws-audit #11: AWS documents the EndpointConfigName dimension during a deployment only; after the shift the
    new fleet is the only one on the variant, so the watch has alarms on {EndpointName, VariantName}. They are
    NOT auto-rollback alarms (during the update they would also see the old fleet)."""
    from functions.handlers.ensure_alarms import handler

    doc = load_state("ensure_alarms")
    state = AlarmsState.model_validate(handler(doc, FakeContext()))
    assert len(state.watch_names) == 2 and not set(state.watch_names) & set(state.names)
    alarms = {a["AlarmName"]: a for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    for name, metric in zip(state.watch_names, ("Invocation5XXErrors", "ModelLatency"), strict=True):
        dims = {d["Name"]: d["Value"] for d in alarms[name]["Dimensions"]}
        assert dims == {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"} and alarms[name]["MetricName"] == metric


def _history(name: str, state: str, at: datetime) -> dict:
    import json

    return {
        "AlarmName": name,
        "Timestamp": at,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated to {state}",
        "HistoryData": json.dumps({"oldState": {"stateValue": "OK"}, "newState": {"stateValue": state}}),
    }


def test_watch_sees_an_alarm_that_fired_and_cleared_during_the_window(monkeypatch, sm) -> None:
    """aws-audit #11: the watch reads the alarms' history over the whole window, not only their end state."""
    from datetime import timedelta

    from functions.adapters import cloudwatch
    from functions.models import CheckDeploymentInput
    from functions.steps.check_deployment import watch_deployment

    doc = CheckDeploymentInput.model_validate(load_state("check_deployment"))
    succeeded = NOW - timedelta(minutes=10)
    deployment = doc.deployment.model_copy(update={"status": "SUCCEEDED", "succeeded_at": succeeded})
    alarms = doc.alarms.model_copy(update={"watch_names": ["w-5xx", "w-latency"]})
    names = [*alarms.watch_names, *alarms.names]
    with Stubber(cloudwatch.client()) as cw:
        cw.add_response(
            "describe_alarms",
            {"MetricAlarms": [{"AlarmName": n, "StateValue": "OK"} for n in names]},
            {"AlarmNames": names},
        )
        for name in names:
            items = [_history(name, "ALARM", succeeded + timedelta(minutes=3))] if name == "w-5xx" else []
            cw.add_response(
                "describe_alarm_history",
                {"AlarmHistoryItems": items},
                {"AlarmName": name, "HistoryItemType": "StateUpdate", "StartDate": succeeded, "EndDate": ANY},
            )
        sm.add_response("describe_endpoint", _live(deployment.target_config, "AllTraffic"))  # still ours (issue 12)
        watch = watch_deployment(deployment, alarms)
        cw.assert_no_pending_responses()
    assert watch.alarm and watch.alarms_in_alarm == ["w-5xx"]
    assert set(watch.alarms.values()) == {"OK"}  # the end state alone would have said "no alarm"


def test_check_deployment_records_when_the_deployment_succeeded(sm) -> None:
    from functions.adapters import cloudwatch
    from functions.models import CheckDeploymentInput
    from functions.steps.check_deployment import check_deployment

    doc = CheckDeploymentInput.model_validate(load_state("check_deployment"))
    target = doc.deployment.target_config
    sm.add_response("describe_endpoint", _live(target, "AllTraffic"))
    with Stubber(cloudwatch.client()) as cw:
        cw.add_response("describe_alarms", {"MetricAlarms": []})
        out = check_deployment(doc.deployment, doc.alarms, load_settings())
    assert out.status == "SUCCEEDED" and out.succeeded_at is not None
    assert abs(datetime.now(UTC) - out.succeeded_at).total_seconds() < 30
