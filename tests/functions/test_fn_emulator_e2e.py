"""The Lambda code against the project's local cloud (moto server + SageMaker emulator), with no code
change: first deployment, an incompatible model rolled back by a 5XX alarm, then a good update that succeeds
although the old FailureReason is still shown."""

from __future__ import annotations

import contextlib
import importlib
import io
import pickle
import tarfile
import time
import urllib.request

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from fn_support import BUCKET, ENV, FakeContext, evaluation, event_for, put_model_files

from functions.adapters._client import reset_clients

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("functions-emulator"), pytest.mark.timeout(180)]
N_FEATURES = 2


def _tarball(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _artifacts() -> dict[str, bytes]:
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    boosters = [
        xgb.train(
            {"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(x, label=y), num_boost_round=n
        )
        for n in (5, 8)
    ]
    sk = LogisticRegression().fit(x, y)
    return {
        "1": _tarball(bytes(boosters[0].save_raw("ubj"))),
        "2": _tarball(pickle.dumps(sk)),  # not an xgboost model: the container cannot load it
        "3": _tarball(bytes(boosters[1].save_raw("ubj"))),
    }


@pytest.fixture
def local_cloud(monkeypatch):
    from moto.server import ThreadedMotoServer

    from local.alarms.moto_patches import patch_moto
    from local.sagemaker.server import EmulatorServer

    patch_moto()  # as the local cloud does: alarms keep a history (the post-deployment watch reads it)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    # moto's backends are process-wide: start every test from an empty cloud.
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10)
    emulator = EmulatorServer(
        aws_endpoint_url=moto_url, provisioning_delay=0.2, alarm_poll_interval=0.2, flush_interval=0.3
    ).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", emulator.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", emulator.url)
    for key, value in {
        "WAIT_INTERVAL_SECONDS": "3",
        "TERMINATION_WAIT_SECONDS": "0",
        "INSTANCE_COUNT": "2",
        "CANARY_PERCENT": "50",
        "METRIC_PUBLISH_FREQUENCY_SECONDS": "10",  # as samconfig [local]: SageMaker's default is 60 s (row 13)
    }.items():
        monkeypatch.setenv(key, value)
    reset_clients()
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=BUCKET)
    boto3.client("dynamodb").create_table(
        TableName=ENV["TABLE_NAME"],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("sns").create_topic(Name=ENV["TOPIC_ARN"].rsplit(":", 1)[1])
    yield s3
    emulator.stop()
    moto.stop()
    reset_clients()


def _run(step: str, doc: dict) -> dict:
    return importlib.import_module(f"functions.handlers.{step}").handler(doc, FakeContext())


def _prepare(s3, version: str, artifact: bytes, execution: str) -> dict:
    key = put_model_files(s3, "churn", version, evaluation_doc=evaluation(), artifact=artifact)
    doc = event_for(s3, key) | {"execution": {"Name": execution}}
    for step, key_ in [
        ("parse_upload", "upload"),
        ("acquire_lock", "lock"),
        ("quality_gate", "gate"),
        ("create_model", "model"),
        ("create_endpoint_config", "endpoint_config"),
        ("ensure_alarms", "alarms"),
        ("deploy", "deployment"),
    ]:
        doc[key_] = _run(step, doc)
    return doc


def _poll(doc: dict, during=None, limit: float = 60) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if during:
            during()
        doc["deployment"] = _run("check_deployment", doc)
        if doc["deployment"]["status"] != "IN_PROGRESS":
            return doc["deployment"]
        time.sleep(0.3)
    raise AssertionError(f"deployment still in progress: {doc['deployment']}")


def _finish(doc: dict, outcome: str) -> dict:
    doc["outcome"] = outcome
    doc["notification"] = _run("notify", doc)
    assert _run("release_lock", doc)["released"]
    return doc


def test_create_rollback_then_update(local_cloud) -> None:
    s3 = local_cloud
    artifacts = _artifacts()
    smr = boto3.client("sagemaker-runtime", config=Config(retries={"max_attempts": 1}))
    cw = boto3.client("cloudwatch")

    first = _prepare(s3, "1", artifacts["1"], "exec-1")
    assert first["deployment"]["mode"] == "CREATE"
    assert _poll(first)["status"] == "SUCCEEDED"
    _finish(first, "DEPLOYED")

    bad = _prepare(s3, "2", artifacts["2"], "exec-2")
    assert bad["deployment"]["mode"] == "UPDATE"
    assert bad["deployment"]["previous_config"] == first["upload"]["names"]["endpoint_config"]
    failures = []

    def traffic() -> None:  # the alarm evaluator's job in the local cloud: alarm once 5XX errors appear
        for _ in range(10):
            try:
                smr.invoke_endpoint(
                    EndpointName=ENV["ENDPOINT_NAME"], ContentType="text/csv", Body="0.5,-1.0"
                )
            except ClientError:
                failures.append(1)
        if failures:
            cw.set_alarm_state(AlarmName=bad["alarms"]["error_alarm"], StateValue="ALARM", StateReason="5XX")

    result = _poll(bad, during=traffic)
    assert failures, "the incompatible model never answered"
    assert result["status"] == "ROLLED_BACK"
    assert bad["alarms"]["error_alarm"] in result["failure_reason"]
    assert result["alarms_in_alarm"] == [bad["alarms"]["error_alarm"]]
    note = _finish(bad, "ROLLED_BACK")["notification"]
    assert "rolled back" in note["payload"]["summary"]

    good = _prepare(s3, "3", artifacts["3"], "exec-3")
    assert good["deployment"]["previous_failure_reason"] == result["failure_reason"]  # it survives
    assert _poll(good)["status"] == "SUCCEEDED"
    good["watch"] = _run("check_deployment", good)  # post-deployment watch: no alarm on the new fleet
    assert good["watch"]["alarm"] is False


def test_shadow_test_promotes_the_better_model(local_cloud, monkeypatch) -> None:
    from functions.config import reset_settings

    s3 = local_cloud
    artifacts = _artifacts()
    smr = boto3.client("sagemaker-runtime", config=Config(retries={"max_attempts": 1}))
    first = _prepare(s3, "1", artifacts["1"], "exec-1")
    assert _poll(first)["status"] == "SUCCEEDED"
    _finish(first, "DEPLOYED")

    monkeypatch.setenv("SHADOW_MIN_INVOCATIONS", "10")
    # The p99 of ~300 requests on a busy 2-core host jitters by several ms (CI saw 14.1 vs 7.9 ms for equal
    # models); this test is about the promotion's wiring, so the latency slack is wider than that jitter.
    monkeypatch.setenv("SHADOW_LATENCY_SLACK_MICROS", "25000")
    reset_settings()
    key = put_model_files(
        s3,
        "churn",
        "3",
        evaluation_doc=evaluation(),
        artifact=artifacts["3"],
        # 25 s: the emulator publishes metrics every 10 s (as samconfig [local]), so the one look at the end of
        # the window (thresholds method) needs at least one published period of both variants.
        deployment={"shadow": {"enabled": True, "sampling_percent": 100, "duration_seconds": 25}},
    )
    doc = event_for(s3, key) | {"execution": {"Name": "exec-shadow"}}
    for step, key_ in [
        ("parse_upload", "upload"),
        ("acquire_lock", "lock"),
        ("quality_gate", "gate"),
        ("create_model", "model"),
        ("create_endpoint_config", "endpoint_config"),
        ("ensure_alarms", "alarms"),
        ("start_shadow_test", "shadow"),
    ]:
        doc[key_] = _run(step, doc)
    assert doc["shadow"]["status"] == "RUNNING"
    # The production variant kept the first endpoint's name; only the shadow has its own (blue/green rule).
    assert doc["shadow"]["production_variant"] == first["endpoint_config"]["variant"] == "AllTraffic"
    deadline = time.monotonic() + 60
    while not doc["shadow"]["done"]:
        assert time.monotonic() < deadline, doc["shadow"]
        for _ in range(10):
            with contextlib.suppress(ClientError):  # the experiment may still be starting
                smr.invoke_endpoint(
                    EndpointName=ENV["ENDPOINT_NAME"], ContentType="text/csv", Body="0.5,-1.0"
                )
        time.sleep(0.5)
        doc["shadow"] = _run("check_shadow_test", doc)
    analysis = doc["shadow"]["analysis"]
    assert doc["shadow"]["verdict"] == "PROMOTE", analysis
    assert analysis["shadow"]["invocations"] >= 10 and analysis["shadow"]["errors_5xx"] == 0
    doc["shadow"] = _run("conclude_shadow_test", doc)
    assert doc["shadow"]["actions"] == {
        doc["upload"]["names"]["shadow_variant"]: "Promote",
        "AllTraffic": "Remove",
    }
    sm = boto3.client("sagemaker")
    deadline = time.monotonic() + 30
    while True:
        described = sm.describe_endpoint(EndpointName=ENV["ENDPOINT_NAME"])
        variants = [v["VariantName"] for v in described["ProductionVariants"]]
        if described["EndpointStatus"] == "InService" and variants == [doc["upload"]["names"]["shadow_variant"]]:
            break
        assert time.monotonic() < deadline, described
        time.sleep(0.3)
    _finish(doc, "PROMOTED")
