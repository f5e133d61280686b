"""Issue 12 on moto: notifications are deduplicated per execution and outcome (Notify is retried after a crash),
and a lock whose execution has ended is taken over at once instead of after its TTL (F09b, F09c)."""

from __future__ import annotations

import json

import boto3
import pytest
from fn_support import TOPIC, FakeContext, load_state

from functions import errors
from functions.config import load_settings
from functions.models import AcquireLockInput, NotifyOutput
from functions.steps.lock import acquire_lock

TABLE = "guardrail-locks"


def _table() -> None:
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def sent(aws):
    """Messages published to the topic (read back through an SQS subscription)."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=TOPIC.rsplit(":", 1)[1])["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    seen: list[dict] = []

    def read() -> list[dict]:
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for m in batch:
                seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        return seen

    return read


def _notify(doc) -> NotifyOutput:
    from functions.handlers.notify import handler

    return NotifyOutput.model_validate(handler(doc, FakeContext()))


def test_a_retried_notify_publishes_once_per_execution_and_outcome(sent):
    _table()
    doc = load_state("notify")
    first = _notify(doc)
    again = _notify(doc)  # Step Functions retried after the worker crashed past the publish
    assert [m["Subject"] for m in sent()] == [first.subject]
    assert again.message_id == first.message_id and again.duplicate and not first.duplicate
    failed = _notify({**doc, "outcome": "FAILED"})  # another outcome of the same execution is news
    assert len(sent()) == 2 and not failed.duplicate


def test_notify_without_its_dedup_record_still_publishes(sent):
    # No table (or no access to it): a notification sent twice beats one never sent.
    doc = load_state("notify")
    _notify(doc)
    _notify(doc)
    assert len(sent()) == 2


# --- lock takeover ---------------------------------------------------------------------------------------
@pytest.fixture
def machine(aws):
    _table()
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="guardrail", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}),
    )["stateMachineArn"]  # fmt: skip
    return sfn, arn


def _upload(version: str):
    doc = load_state("acquire_lock")
    doc["upload"]["idempotency_key"] = f"upload#b/models/m/1/model.tar.gz#{version}"
    return AcquireLockInput.model_validate(doc).upload


def _start(sfn, machine: str, name: str) -> str:
    return sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]


def test_the_lock_records_the_execution_arn(machine):
    sfn, sm = machine
    arn = _start(sfn, sm, "exec-a")
    doc = load_state("acquire_lock") | {"execution": {"Name": "exec-a", "Id": arn}}
    parsed = AcquireLockInput.model_validate(doc)
    assert parsed.execution == "exec-a" and parsed.execution_arn == arn
    lock = acquire_lock(parsed.upload, "exec-a", load_settings(), now=1000, execution_arn=arn)
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": lock.lock_key}})["Item"]
    assert item["execution_arn"]["S"] == arn


def test_a_lock_held_by_an_ended_execution_is_taken_over_at_once(machine):
    sfn, sm = machine
    dead = _start(sfn, sm, "exec-a")
    settings = load_settings()
    acquire_lock(_upload("v1"), "exec-a", settings, now=1000, execution_arn=dead)
    live = _start(sfn, sm, "exec-b")
    waiting = acquire_lock(_upload("v2"), "exec-b", settings, now=1001, execution_arn=live)
    assert waiting.queued and "exec-a" in (waiting.reason or "")  # the holder still runs: wait (its turn next)
    sfn.stop_execution(executionArn=dead, cause="operator")  # ABORTED: nothing after it runs
    lock = acquire_lock(_upload("v2"), "exec-b", settings, now=1002, execution_arn=live)
    assert lock.acquired and lock.taken_over_from == "exec-a"
    assert "ABORTED" in (lock.takeover_reason or "")


def test_a_lock_of_an_unknown_execution_is_kept_until_its_ttl(machine):
    # No ARN recorded (a lock written before this change): nothing to ask, the TTL decides as before.
    settings = load_settings()
    old = {"pk": "lock#guardrail-endpoint", "execution_name": "exec-old", "expires_at": 1000 + settings.lock_ttl_seconds}
    boto3.client("dynamodb").put_item(TableName=TABLE, Item={k: {"N": str(v)} if isinstance(v, int) else {"S": v} for k, v in old.items()})
    with pytest.raises(errors.EndpointLocked):
        acquire_lock(_upload("v2"), "exec-b", settings, now=1001, execution_arn=None)


# --- ExecutionEnded: ABORTED / TIMED_OUT / FAILED (F09c) ---------------------------------------------------
from datetime import UTC, datetime  # noqa: E402

from botocore.stub import ANY, Stubber  # noqa: E402

from functions.adapters import sagemaker  # noqa: E402
from functions.models import ExecutionEndedOutput  # noqa: E402

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KEY = "models/xgb-runnerup/2/model.tar.gz"


def _ended_event(status: str = "ABORTED", name: str = "exec-a") -> dict:
    trigger = {"version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3",
               "detail": {"bucket": {"name": "guardrail-models"}, "object": {"key": KEY, "version-id": "v1"}}}  # fmt: skip
    return {
        "version": "0", "id": "s1", "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "123456789012", "region": "us-east-1", "resources": [f"arn:aws:states:us-east-1:123456789012:execution:g:{name}"],
        "detail": {"executionArn": f"arn:aws:states:us-east-1:123456789012:execution:g:{name}",
                   "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:g", "name": name,
                   "status": status, "input": json.dumps(trigger), "startDate": 1, "stopDate": 2},
    }  # fmt: skip


def _updating() -> dict:
    return {"EndpointName": "guardrail-endpoint", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e",
            "EndpointConfigName": "xgb-best-1-cfg", "EndpointStatus": "Updating", "CreationTime": NOW,
            "LastModifiedTime": NOW, "PendingDeploymentSummary": {"EndpointConfigName": "xgb-runnerup-2-cfg"}}  # fmt: skip


def _in_service() -> dict:
    return {k: v for k, v in _updating().items() if k != "PendingDeploymentSummary"} | {"EndpointStatus": "InService"}


def _experiment(status: str = "Running") -> dict:
    return {"Arn": "arn:exp", "Name": "x", "Type": "ShadowMode", "Status": status,
            "EndpointMetadata": {"EndpointName": "guardrail-endpoint"}, "ModelVariants": [],
            "ShadowModeConfig": {"SourceModelVariantName": "AllTraffic",
                                 "ShadowModelVariants": [{"ShadowModelVariantName": "xgb-runnerup-2-shadow", "SamplingPercentage": 50}]}}  # fmt: skip


def _ended(event: dict) -> ExecutionEndedOutput:
    from functions.handlers.execution_ended import handler

    return ExecutionEndedOutput.model_validate(handler(event, FakeContext()))


def test_an_aborted_execution_releases_its_lock_stops_its_shadow_and_says_what_serves(sent):
    _table()
    settings = load_settings()
    lock = acquire_lock(_upload("v1"), "exec-a", settings)
    with Stubber(sagemaker.client()) as sm:
        sm.add_response("describe_inference_experiment", _experiment("Running"))
        sm.add_response("stop_inference_experiment", {"InferenceExperimentArn": "arn:exp"})
        sm.add_response("describe_endpoint", _updating())
        out = _ended(_ended_event("ABORTED"))
        # EventBridge delivers at least once: the same event again changes nothing and says nothing.
        sm.add_response("describe_inference_experiment", _experiment("Stopping"))
        sm.add_response("describe_endpoint", _updating())
        again = _ended(_ended_event("ABORTED"))
        sm.assert_no_pending_responses()
    assert out.released and out.shadow["stopped"] and out.shadow["actions"] == {"AllTraffic": "Retain", "xgb-runnerup-2-shadow": "Remove"}
    assert out.endpoint["serving"] == "xgb-best-1-cfg" and out.endpoint["pending"] == "xgb-runnerup-2-cfg"
    assert "Item" not in boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": lock.lock_key}})
    [msg] = sent()
    assert msg["Subject"] == "Guardrail ABORTED: xgb-runnerup/2 on guardrail-endpoint"
    assert "serves xgb-best-1-cfg" in msg["Message"] and "finishing the update to xgb-runnerup-2-cfg" in msg["Message"]
    assert "lock was released" in msg["Message"]
    assert not again.released and again.notified is None and again.notify_skipped


def test_a_failed_execution_that_notified_is_not_announced_twice(sent):
    _table()
    from functions.models import NotifyInput
    from functions.steps.notify import notify

    notify(NotifyInput(outcome="FAILED", execution="exec-f"), load_settings())  # what Notify did before the Fail state
    with Stubber(sagemaker.client()) as sm:
        sm.add_response("describe_inference_experiment", _experiment("Completed"))
        sm.add_response("describe_endpoint", _in_service())
        out = _ended(_ended_event("FAILED", name="exec-f"))
    assert out.notify_skipped and out.notified is None and len(sent()) == 1


def test_a_timed_out_execution_is_announced_even_after_its_deployed_message(sent):
    _table()
    with Stubber(sagemaker.client()) as sm:
        sm.add_client_error("describe_inference_experiment", "ValidationException", "Could not find inference experiment")
        sm.add_response("describe_endpoint", _in_service())
        out = _ended(_ended_event("TIMED_OUT", name="exec-t"))
    [msg] = sent()
    assert out.notified and msg["Subject"].startswith("Guardrail TIMED_OUT") and "InService and serves xgb-best-1-cfg" in msg["Message"]
    assert not out.released  # it held no lock


# --- the post-deployment watch: vanished guardrails (F10) and an endpoint moved by someone else (F08b) -----
from functions.models import CheckDeploymentInput  # noqa: E402


@pytest.fixture
def no_history(aws, monkeypatch):
    """moto has no DescribeAlarmHistory; the alarms' history is not what these tests are about."""
    from functions.adapters import cloudwatch

    monkeypatch.setattr(cloudwatch, "alarms_fired", lambda names, start, end: [])


def _watch_doc():
    doc = CheckDeploymentInput.model_validate(load_state("check_deployment"))
    deployment = doc.deployment.model_copy(update={"status": "SUCCEEDED", "succeeded_at": datetime.now(UTC)})
    return deployment, doc.alarms


def _put_alarms(names: list[str]) -> None:
    cw = boto3.client("cloudwatch")
    for name in names:
        cw.put_metric_alarm(AlarmName=name, Namespace="AWS/SageMaker", MetricName="ModelLatency", Statistic="Average",
                            Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")  # fmt: skip


def _serving(config: str, status: str = "InService", pending: str | None = None) -> dict:
    out = {k: v for k, v in _updating().items() if k != "PendingDeploymentSummary"}
    out |= {"EndpointConfigName": config, "EndpointStatus": status}
    return out | ({"PendingDeploymentSummary": {"EndpointConfigName": pending}} if pending else {})


def _watch(deployment, alarms, described: dict):
    from functions.steps.check_deployment import watch_deployment

    with Stubber(sagemaker.client()) as sm:
        sm.add_response("describe_endpoint", described)
        for _ in range(3):  # whatever else the watch reads of the endpoint (evidence)
            sm.add_response("describe_endpoint", described)
        return watch_deployment(deployment, alarms, load_settings())


def test_a_rollback_alarm_deleted_during_the_deployment_fails_the_watch(no_history):
    deployment, alarms = _watch_doc()
    _put_alarms(alarms.names[1:])  # the 5XX-rate alarm was deleted mid-canary
    watch = _watch(deployment, alarms, _serving(deployment.target_config))
    assert watch.alarm and alarms.names[0] in watch.alarms_in_alarm
    assert watch.missing_alarms == [alarms.names[0]] and not watch.changed_externally


def test_an_endpoint_moved_to_another_config_during_the_watch_is_changed_externally(no_history):
    deployment, alarms = _watch_doc()
    _put_alarms(alarms.names)
    watch = _watch(deployment, alarms, _serving("someone-elses-cfg"))
    assert watch.changed_externally and watch.serving_config == "someone-elses-cfg"
    updating = _watch(deployment, alarms, _serving(deployment.target_config, "Updating", pending="someone-elses-cfg"))
    assert updating.changed_externally and updating.serving_config == deployment.target_config
    still = _watch(deployment, alarms, _serving(deployment.target_config))
    assert not still.changed_externally and not still.alarm and still.serving_config == deployment.target_config


def test_the_messages_say_why_and_what_serves(sent):
    doc = load_state("notify")
    missing = {"alarms": {"a-5xx": "MISSING"}, "alarms_in_alarm": ["a-5xx"], "alarm": True, "missing_alarms": ["a-5xx"],
               "rolled_back": True, "rollback_config": "xgb-best-1-cfg", "settled": True}  # fmt: skip
    rolled = _notify({**doc, "outcome": "ROLLED_BACK", "watch": missing})
    assert "a-5xx" in rolled.payload.summary and "deleted" in rolled.payload.summary
    moved = {"alarms": {}, "alarm": False, "changed_externally": True, "serving_config": "someone-elses-cfg"}
    changed = _notify({**doc, "outcome": "CHANGED_EXTERNALLY", "watch": moved})
    assert changed.subject.startswith("Guardrail CHANGED_EXTERNALLY")
    assert "now serves someone-elses-cfg" in changed.payload.summary
    assert changed.payload.details["serving_config"] == "someone-elses-cfg"
    assert len(sent()) == 2


# --- deployed versions are immutable (F04b, issue 12 §5) --------------------------------------------------
import hashlib  # noqa: E402

from functions.models import CreateModelInput  # noqa: E402


def _versioned_upload(body: bytes, key: str = "models/xgb-runnerup/2/model.tar.gz"):
    s3 = boto3.client("s3")
    if "guardrail-models" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="guardrail-models")
        s3.put_bucket_versioning(Bucket="guardrail-models", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="guardrail-models", Key=key, Body=body)["VersionId"]
    s3.put_object(Bucket="guardrail-models", Key=key.replace("model.tar.gz", "evaluation.json"), Body=b'{"auc": 1}')
    doc = load_state("create_model")
    doc["upload"] |= {"bucket": "guardrail-models", "key": key, "version_id": version,
                      "artifact_uri": f"s3://guardrail-models/{key}", "evaluation_key": key.replace("model.tar.gz", "evaluation.json")}  # fmt: skip
    return CreateModelInput.model_validate(doc).upload


def test_the_model_points_at_a_content_addressed_copy_of_the_exact_version(aws):
    from functions.steps.create_model import create_model

    upload = _versioned_upload(b"passed the gate")
    _versioned_upload(b"overwritten after the gate")  # a newer version of the same key, before CreateModel ran
    sha = hashlib.sha256(b"passed the gate").hexdigest()
    url = f"s3://guardrail-models/deployed/{sha}/model.tar.gz"
    with Stubber(sagemaker.client()) as sm:
        sm.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"}, {"ModelName": upload.names.model, "ExecutionRoleArn": ANY,
                        "PrimaryContainer": {"Image": ANY, "ModelDataUrl": url, "Mode": "SingleModel"}})  # fmt: skip
        out = create_model(upload, load_settings())
    s3 = boto3.client("s3")
    assert s3.get_object(Bucket="guardrail-models", Key=f"deployed/{sha}/model.tar.gz")["Body"].read() == b"passed the gate"
    assert s3.get_object(Bucket="guardrail-models", Key=f"deployed/{sha}/evaluation.json")["Body"].read() == b'{"auc": 1}'
    assert out.model_data_url == url and out.sha256 == sha and out.status == "created"


def test_overwriting_a_deployed_version_with_other_bytes_is_refused(aws):
    from functions.steps.create_model import create_model

    first = hashlib.sha256(b"the bytes that serve").hexdigest()
    upload = _versioned_upload(b"broken bytes under the same name")
    described = {"ModelName": upload.names.model, "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m", "CreationTime": NOW,
                 "PrimaryContainer": {"Image": "i", "ModelDataUrl": f"s3://guardrail-models/deployed/{first}/model.tar.gz"}}  # fmt: skip
    with Stubber(sagemaker.client()) as sm:
        sm.add_client_error("create_model", "ValidationException", 'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/m".')
        sm.add_response("describe_model", described)
        sm.add_response("describe_model", described)
        with pytest.raises(errors.InvalidArtifact, match="immutable"):
            create_model(upload, load_settings())
    # the same bytes again (a retried CreateModel, a re-run) count as done
    same = _versioned_upload(b"the bytes that serve")
    with Stubber(sagemaker.client()) as sm:
        sm.add_client_error("create_model", "ValidationException", 'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/m".')
        sm.add_response("describe_model", described)
        sm.add_response("describe_model", described)
        assert create_model(same, load_settings()).status == "existed"
