"""Real serving: container formats, predictions equal xgboost's, latency metrics, production data capture."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import numpy as np
import pytest
from emulator_helpers import BUCKET, create_config, create_model, eventually, metric_stats, row, wait_status

from local.sagemaker.server import EmulatorServer


@pytest.fixture(scope="module")
def endpoints(sm):
    out = {}
    for artifact in ("v1", "v2", "slow"):
        name = f"serving-{artifact}"
        create_model(sm, name, artifact)
        create_config(sm, name, name, count=1, DataCaptureConfig={
            "EnableCapture": True, "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{BUCKET}/capture-prod", "CaptureOptions": [{"CaptureMode": "Input"},
                                                                                 {"CaptureMode": "Output"}]})
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        out[artifact] = name
    for name in out.values():
        assert wait_status(sm, name)["EndpointStatus"] == "InService"
    return out


def rows_of(n, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)
    return x, "\n".join(",".join(f"{v:.6f}" for v in r) for r in x)


def test_csv_matches_xgboost_and_json_output(smr, boosters, endpoints):
    x, csv = rows_of(5)
    x = np.array([[float(f"{v:.6f}") for v in r] for r in x], dtype=np.float32)
    expected = boosters["v2"].inplace_predict(x)  # v2 is served from a pickled Booster
    r = smr.invoke_endpoint(EndpointName=endpoints["v2"], ContentType="text/csv", Body=csv)
    assert r["ContentType"] == "text/csv"
    assert np.allclose([float(v) for v in r["Body"].read().decode().split("\n")], expected, atol=1e-6)
    r = smr.invoke_endpoint(EndpointName=endpoints["v2"], ContentType="text/csv", Accept="application/json", Body=csv)
    scores = [p["score"] for p in json.loads(r["Body"].read())["predictions"]]
    assert r["ContentType"] == "application/json" and np.allclose(scores, expected, atol=1e-6)


def test_slow_model_is_slower_in_model_latency(smr, cloudwatch, endpoints):
    for name in (endpoints["v1"], endpoints["slow"]):
        for i in range(30):
            smr.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=row(i))["Body"].read()
    def both():
        fast = metric_stats(cloudwatch, "ModelLatency", endpoints["v1"], "AllTraffic", endpoints["v1"])
        slow = metric_stats(cloudwatch, "ModelLatency", endpoints["slow"], "AllTraffic", endpoints["slow"])
        assert fast["SampleCount"] >= 30 and slow["SampleCount"] >= 30
        return fast, slow

    fast, slow = eventually(both)
    # minimum: the least disturbed by whatever else the machine runs; the slowed trees add ~2 ms per row on top of
    # the container's CSV parsing (csv.Sniffer per request, ~0.4 ms, in both)
    assert slow["Minimum"] > fast["Minimum"] + 1000 > 1000
    overhead = metric_stats(cloudwatch, "OverheadLatency", endpoints["v1"], "AllTraffic", endpoints["v1"])
    assert 0 < overhead["Average"] < 50_000  # microseconds


def test_concurrent_requests_are_served_concurrently(emulator, smr, endpoints):
    """A request still inside its container does not hold up the next one (a serial server would deadlock)."""
    variant = emulator.backend.endpoints[endpoints["v2"]].blue.variants[0]
    real, second_done = variant.served, threading.Event()

    class Gate:
        def invoke(self, body, content_type, accept):
            if body == b"first":
                assert second_done.wait(10), "the second request was not served while the first one ran"
                return b"first-done", "text/csv"
            return real.invoke(body, content_type, accept)

    variant.served = Gate()
    try:
        result = {}
        first = threading.Thread(target=lambda: result.update(r=smr.invoke_endpoint(
            EndpointName=endpoints["v2"], ContentType="text/csv", Body="first")["Body"].read()))
        first.start()
        time.sleep(0.2)
        assert 0 <= float(smr.invoke_endpoint(EndpointName=endpoints["v2"], ContentType="text/csv",
                                              Body=row())["Body"].read()) <= 1
        second_done.set()
        first.join(10)
        assert result["r"] == b"first-done"
    finally:
        variant.served = real


def test_production_data_capture(smr, s3, endpoints):
    r = smr.invoke_endpoint(EndpointName=endpoints["v1"], ContentType="text/csv", Body=row(7), InferenceId="capture-me")
    answer = r["Body"].read().decode()
    prefix = f"capture-prod/{endpoints['v1']}/AllTraffic/"

    def captured():
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        records = [json.loads(line) for k in keys
                   for line in s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode().splitlines()]
        mine = [rec for rec in records if rec["eventMetadata"]["inferenceId"] == "capture-me"]
        assert len(mine) == 1
        return mine

    mine = eventually(captured)
    cap = mine[0]["captureData"]
    assert cap["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT", "data": row(7), "encoding": "CSV"}
    assert cap["endpointOutput"]["data"] == answer and cap["endpointOutput"]["mode"] == "OUTPUT"
    assert mine[0]["eventVersion"] == "0" and mine[0]["eventMetadata"]["inferenceTime"].endswith("Z")


def test_describe_and_list(sm, endpoints):
    d = sm.describe_endpoint(EndpointName=endpoints["v1"])
    assert d["DataCaptureConfig"]["DestinationS3Uri"] == f"s3://{BUCKET}/capture-prod"
    assert d["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"].endswith("sagemaker-xgboost:1.7-1")
    listed = {e["EndpointName"] for e in sm.list_endpoints(NameContains="serving-")["Endpoints"]}
    assert listed >= set(endpoints.values())
    page = sm.list_models(NameContains="serving-", MaxResults=2)
    assert len(page["Models"]) == 2 and "NextToken" in page
    assert sm.describe_model(ModelName="serving-v1")["PrimaryContainer"]["ModelDataUrl"].endswith("v1/model.tar.gz")


def test_stop_leaves_no_threads(moto_url):
    before = set(threading.enumerate())
    server = EmulatorServer(aws_endpoint_url=moto_url, provisioning_delay=0).start()
    client = boto3.client("sagemaker", endpoint_url=server.url, region_name="us-east-1")
    client.list_endpoints()  # leaves an idle keep-alive connection open
    server.stop()
    time.sleep(0.2)
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not leftover, leftover


def test_standalone_cli(moto_url):
    proc = subprocess.Popen([sys.executable, "-m", "local.sagemaker", "--port", "0", "--aws-endpoint-url", moto_url],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.rsplit(" ", 1)[1].strip()
        with urllib.request.urlopen(url + "/ping") as resp:
            assert resp.status == 200
        assert boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1").list_models()["Models"] == []
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
