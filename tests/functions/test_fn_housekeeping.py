"""housekeeping (issue 14 §6) on moto: five deployments leave only the live configs' alarms and at most
KEEP_VERSIONS + 1 of Guardrail's configs and models; what serves, the rollback target, another execution's and
what is not Guardrail's are never deleted.

moto has no UpdateEndpoint, so "the endpoint now serves vN" is DeleteEndpoint + CreateEndpoint on vN's config
(housekeeping only reads DescribeEndpoint's EndpointConfigName and status)."""

from __future__ import annotations

import time

import boto3
import pytest
from fn_support import BUCKET, ENDPOINT, ROLE

from functions.config import reset_settings
from functions.errors import AwsServiceError
from functions.models import HousekeepingInput
from functions.steps import housekeeping as hk
from functions.steps.names import resource_names

TABLE = "guardrail-locks"
SUFFIXES = ["5xx-rate", "model-latency", "4xx-rate", "verdict", "watch-5xx-rate", "watch-model-latency"]


class Cloud:
    def __init__(self) -> None:
        self.sm = boto3.client("sagemaker", region_name="us-east-1")
        self.cw = boto3.client("cloudwatch", region_name="us-east-1")
        self.ddb = boto3.client("dynamodb", region_name="us-east-1")
        self.ddb.create_table(
            TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )
        self.serving: str | None = None

    def model(self, name: str, url: str) -> None:
        self.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                             PrimaryContainer={"Image": "img", "ModelDataUrl": url})
        time.sleep(0.01)  # distinct CreationTime

    def config(self, name: str, model: str) -> None:
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        time.sleep(0.01)

    def alarms(self, config: str, endpoint: str = ENDPOINT) -> None:
        for suffix in SUFFIXES:
            self.cw.put_metric_alarm(
                AlarmName=f"guardrail-{endpoint}-{config}-{suffix}", Namespace="AWS/SageMaker",
                MetricName="Invocations", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )

    def serve(self, config: str, endpoint: str = ENDPOINT) -> None:
        if endpoint in {e["EndpointName"] for e in self.sm.list_endpoints()["Endpoints"]}:
            self.sm.delete_endpoint(EndpointName=endpoint)
        self.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        if endpoint == ENDPOINT:
            self.serving = config

    def lock(self, owner: str) -> None:
        self.ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"lock#{ENDPOINT}"}, "execution_name": {"S": owner}})

    def deploy(self, version: str, *, rolled_back: bool = False) -> HousekeepingInput:
        """What one upload's execution leaves: model, config, alarms; the endpoint on it unless rolled back."""
        names = resource_names(ENDPOINT, "bank-marketing", version, f"upload#{version}")
        self.model(names.model, f"s3://{BUCKET}/deployed/{version}/model.tar.gz")
        self.config(names.endpoint_config, names.model)
        self.alarms(names.endpoint_config)
        previous = self.serving
        if not rolled_back:
            self.serve(names.endpoint_config)
        self.lock(f"exec-{version}")
        return HousekeepingInput.model_validate({
            "outcome": "DEPLOYED",
            "execution": f"exec-{version}",
            "upload": upload(version, names),
            "lock": {"acquired": True, "owner": f"exec-{version}", "lock_key": f"lock#{ENDPOINT}",
                     "idempotency_key": f"upload#{version}", "expires_at": 2_000_000_000},
            "deployment": {"mode": "UPDATE" if previous else "CREATE", "endpoint_name": ENDPOINT,
                           "target_config": names.endpoint_config, "previous_config": previous,
                           "status": "ROLLED_BACK" if rolled_back else "SUCCEEDED"},
        })

    def configs(self) -> set[str]:
        return {c["EndpointConfigName"] for c in self.sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]}

    def models(self) -> set[str]:
        return {m["ModelName"] for m in self.sm.list_models(MaxResults=100)["Models"]}

    def alarm_names(self) -> set[str]:
        return {a["AlarmName"] for a in self.cw.describe_alarms()["MetricAlarms"]}


def upload(version: str, names) -> dict:
    return {
        "bucket": BUCKET, "key": f"models/bank-marketing/{version}/model.tar.gz",
        "artifact_uri": f"s3://{BUCKET}/models/bank-marketing/{version}/model.tar.gz",
        "prefix": f"models/bank-marketing/{version}/", "evaluation_key": "e", "deployment_key": "d",
        "model_name": "bank-marketing", "model_version": version, "endpoint_name": ENDPOINT, "strategy": "CANARY",
        "canary_percent": 25, "linear_step_percent": 25,
        "shadow": {"enabled": False, "sampling_percent": 100, "duration_seconds": 120},
        "names": names.model_dump(), "idempotency_key": f"upload#{version}",
    }


@pytest.fixture
def cloud(aws) -> Cloud:
    return Cloud()


def settings():
    from functions.config import load_settings

    reset_settings()
    return load_settings()


def guardrail(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("bank-marketing-")}


@pytest.mark.parametrize("keep", [1, 2])
def test_five_uploads_leave_live_alarms_and_keep_plus_one_versions(cloud, monkeypatch, keep):
    monkeypatch.setenv("KEEP_VERSIONS", str(keep))
    # Not Guardrail's: a model outside the stack's deployed/ copies, its config; another endpoint's alarms.
    cloud.model("someone-else", "s3://other-bucket/model.tar.gz")
    cloud.config("someone-else-cfg", "someone-else")
    cloud.alarms("x-cfg", endpoint="other-endpoint")
    outputs = []
    for version in ("v1", "v2", "v3", "v4", "v5"):
        # v3 is rolled back: its execution ends ROLLED_BACK, no housekeeping (the next deployment cleans up).
        doc = cloud.deploy(version, rolled_back=version == "v3")
        if version != "v3":
            outputs.append(hk.housekeeping(doc, settings()))
    last = outputs[-1]
    assert last.skipped is None and not last.errors
    assert cloud.serving == "bank-marketing-v5-cfg"
    # alarms: only the serving config's (6), and the other endpoint's untouched
    assert {a for a in cloud.alarm_names() if a.startswith(f"guardrail-{ENDPOINT}-")} == {
        f"guardrail-{ENDPOINT}-bank-marketing-v5-cfg-{s}" for s in SUFFIXES
    }
    assert len([a for a in cloud.alarm_names() if a.startswith("guardrail-other-endpoint-")]) == 6
    configs, models = guardrail(cloud.configs()), guardrail(cloud.models())
    assert len(configs) <= keep + 1 and len(models) <= keep + 1
    # the serving config and the rollback target (v4) stay, with their models
    assert {"bank-marketing-v5-cfg", "bank-marketing-v4-cfg"} <= configs
    assert {"bank-marketing-v5", "bank-marketing-v4"} <= models
    assert {"someone-else-cfg"} <= cloud.configs() and "someone-else" in cloud.models()
    # without housekeeping every alarm ever created stays (30 here); it deleted v1-v4's (v3 rolled back)
    assert sum(len(o.deleted_alarms) for o in outputs) == 6 * 4
    if keep == 2:
        assert configs == {"bank-marketing-v5-cfg", "bank-marketing-v4-cfg", "bank-marketing-v3-cfg"}


def test_rollback_target_is_kept_even_when_newer_configs_exist(cloud, monkeypatch):
    monkeypatch.setenv("KEEP_VERSIONS", "1")
    for version in ("v1", "v2"):
        hk.housekeeping(cloud.deploy(version), settings())
    cloud.deploy("v3", rolled_back=True)  # newer than v2, never served
    out = hk.housekeeping(cloud.deploy("v4"), settings())
    # v4 serves; v2 was its previous config (the rollback target): kept although v3 is newer
    assert guardrail(cloud.configs()) == {"bank-marketing-v4-cfg", "bank-marketing-v2-cfg"}
    assert guardrail(cloud.models()) == {"bank-marketing-v4", "bank-marketing-v2"}
    assert set(out.deleted_configs) == {"bank-marketing-v3-cfg", "bank-marketing-v1-cfg"}


def test_config_another_endpoint_serves_is_kept(cloud, monkeypatch):
    monkeypatch.setenv("KEEP_VERSIONS", "1")
    cloud.deploy("v1")
    cloud.serve("bank-marketing-v1-cfg", endpoint="someone-elses-endpoint")
    for version in ("v2", "v3", "v4"):
        hk.housekeeping(cloud.deploy(version), settings())
    assert "bank-marketing-v1-cfg" in cloud.configs() and "bank-marketing-v1" in cloud.models()
    assert "bank-marketing-v2-cfg" not in cloud.configs()


def test_another_executions_newer_resources_are_kept(cloud, monkeypatch):
    monkeypatch.setenv("KEEP_VERSIONS", "1")
    for version in ("v1", "v2"):
        cloud.deploy(version)
    doc = cloud.deploy("v3")
    # made after this execution's own model: e.g. by an execution that took the lock over
    cloud.model("bank-marketing-v9", f"s3://{BUCKET}/deployed/v9/model.tar.gz")
    cloud.config("bank-marketing-v9-cfg", "bank-marketing-v9")
    cloud.alarms("bank-marketing-v9-cfg")
    out = hk.housekeeping(doc, settings())
    assert {"bank-marketing-v9-cfg"} <= cloud.configs() and "bank-marketing-v9" in cloud.models()
    assert f"guardrail-{ENDPOINT}-bank-marketing-v9-cfg-5xx-rate" in cloud.alarm_names()
    assert out.deleted_configs == ["bank-marketing-v1-cfg"]


def test_nothing_is_deleted_without_the_lock(cloud):
    for version in ("v1", "v2", "v3", "v4"):
        doc = cloud.deploy(version)
    cloud.lock("exec-someone-else")
    before = (cloud.configs(), cloud.models(), cloud.alarm_names())
    out = hk.housekeeping(doc, settings())
    assert out.skipped and "no longer held" in out.skipped
    assert (cloud.configs(), cloud.models(), cloud.alarm_names()) == before


def test_nothing_is_deleted_while_the_endpoint_is_not_settled(cloud, monkeypatch):
    for version in ("v1", "v2", "v3", "v4"):
        doc = cloud.deploy(version)
    real = hk.sagemaker.describe_endpoint
    monkeypatch.setattr(hk.sagemaker, "describe_endpoint",
                        lambda name: {**real(name), "EndpointStatus": "Updating"})
    before = (cloud.configs(), cloud.models(), cloud.alarm_names())
    out = hk.housekeeping(doc, settings())
    assert out.skipped == f"endpoint {ENDPOINT} is Updating: not settled"
    assert (cloud.configs(), cloud.models(), cloud.alarm_names()) == before


def test_a_failed_deletion_is_reported_and_the_rest_goes_on(cloud, monkeypatch):
    monkeypatch.setenv("KEEP_VERSIONS", "1")
    for version in ("v1", "v2", "v3"):
        doc = cloud.deploy(version)
    real = hk.sagemaker.delete_endpoint_config

    def refuse_v1(name: str) -> bool:
        if name == "bank-marketing-v1-cfg":
            raise AwsServiceError("AccessDeniedException", "not allowed", "DeleteEndpointConfig")
        return real(name)

    monkeypatch.setattr(hk.sagemaker, "delete_endpoint_config", refuse_v1)
    out = hk.housekeeping(doc, settings())
    assert out.errors and "bank-marketing-v1-cfg" in out.errors[0] and "AccessDeniedException" in out.errors[0]
    # v1's model stays with its config; the alarms went
    assert "bank-marketing-v1" in cloud.models() and "bank-marketing-v1" not in out.deleted_models
    assert out.deleted_alarms


def test_alarm_config_parses_only_ensure_alarms_names():
    prefix = f"guardrail-{ENDPOINT}-"
    assert hk.alarm_config(f"{prefix}m-v1-cfg-watch-5xx-rate", prefix) == "m-v1-cfg"
    assert hk.alarm_config(f"{prefix}m-v1-cfg-5xx-rate", prefix) == "m-v1-cfg"
    assert hk.alarm_config(f"{prefix}m-v1-cfg-verdict", prefix) == "m-v1-cfg"
    assert hk.alarm_config(f"{prefix}hand-made", prefix) is None
    assert hk.alarm_config("guardrail-other-m-v1-cfg-5xx-rate", prefix) is None


def test_after_a_promote_the_promoted_models_config_and_alarms_stay(cloud, monkeypatch):
    monkeypatch.setenv("KEEP_VERSIONS", "1")
    for version in ("v1", "v2"):
        cloud.deploy(version)
    doc = cloud.deploy("v3", rolled_back=True)  # the shadow test: v3's model, config and alarms
    # StopInferenceExperiment(Promote): the endpoint serves a config SageMaker made, on v3's model
    cloud.config(f"{ENDPOINT}-ie-abc123", "bank-marketing-v3")
    cloud.serve(f"{ENDPOINT}-ie-abc123")
    doc = HousekeepingInput.model_validate({
        **doc.model_dump(mode="json"), "outcome": "PROMOTED", "deployment": None,
        "endpoint_config": {"name": "bank-marketing-v3-cfg", "status": "created", "variant": "AllTraffic",
                            "live_config": "bank-marketing-v2-cfg"},
    })
    out = hk.housekeeping(doc, settings())
    assert out.serving_config == f"{ENDPOINT}-ie-abc123" and not out.errors
    assert {a for a in cloud.alarm_names() if a.startswith(f"guardrail-{ENDPOINT}-")} == {
        f"guardrail-{ENDPOINT}-bank-marketing-v3-cfg-{s}" for s in SUFFIXES
    }
    assert cloud.configs() == {f"{ENDPOINT}-ie-abc123", "bank-marketing-v3-cfg", "bank-marketing-v2-cfg"}
    assert guardrail(cloud.models()) == {"bank-marketing-v3", "bank-marketing-v2"}


def test_notify_tells_what_housekeeping_deleted_or_why_it_failed():
    from functions.models import NotifyInput
    from functions.steps.notify import summary_for

    base = {"outcome": "DEPLOYED", "upload": {"strategy": "CANARY"}, "deployment": {"mode": "UPDATE"}}
    done = {"keep_versions": 2, "deleted_alarms": ["a", "b"], "deleted_configs": ["c"], "deleted_models": ["m"],
            "errors": ["DeleteModel x: AccessDenied: no"]}
    text, details = summary_for(NotifyInput.model_validate({**base, "housekeeping": done}), "m/v2", ENDPOINT)
    assert "Housekeeping deleted 2 alarm(s) of retired configs, 1 endpoint config(s), 1 model(s), keeping 2" in text
    quiet = {**base, "housekeeping": {"keep_versions": 2, "deleted_alarms": ["a"]}}
    assert "deleted 1 alarm(s) of retired configs, keeping" in summary_for(NotifyInput.model_validate(quiet), "m", "e")[0]
    nothing = {**base, "housekeeping": {"keep_versions": 2}}
    assert "Housekeeping: nothing to delete (keeping 2" in summary_for(NotifyInput.model_validate(nothing), "m", "e")[0]
    assert "1 deletion(s) failed: DeleteModel x" in text and details["housekeeping"] == done
    failed = {**base, "outcome": "PROMOTED", "housekeeping_error": {"Error": "Lambda.Unknown", "Cause": "boom"}}
    text, details = summary_for(NotifyInput.model_validate(failed), "m/v2", ENDPOINT)
    assert "Housekeeping failed (Lambda.Unknown" in text and "the deployment stands" in text
    assert details["housekeeping_error"]["error"] == "Lambda.Unknown"
    text, _ = summary_for(NotifyInput.model_validate({**base, "outcome": "ROLLED_BACK", "housekeeping": done}),
                          "m/v2", ENDPOINT)
    assert "Housekeeping" not in text
