"""Shadow tests: AWS's shadow-API sample sequence, mirroring, data capture pairing, promote/remove, schedule end."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from botocore.exceptions import ClientError
from emulator_helpers import (
    BUCKET,
    FAST_METRICS,
    ROLE,
    create_config,
    create_model,
    eventually,
    metric_stats,
    row,
    wait_status,
)


def variant_config(model: str, variant: str) -> dict:
    return {"ModelName": model, "VariantName": variant, "InfrastructureConfig": {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}}


def wait_experiment(sm, name: str, statuses: tuple[str, ...], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = sm.describe_inference_experiment(Name=name)
        if desc["Status"] in statuses or time.monotonic() > deadline:
            return desc
        time.sleep(0.1)


def read_capture(s3, prefix: str) -> list[dict]:
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
            for o in page.get("Contents", [])]
    records = []
    for key in keys:
        assert key.endswith(".jsonl")
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        records += [json.loads(line) | {"_key": key} for line in body.splitlines() if line]
    return records


@pytest.fixture
def endpoint(sm, names):
    create_model(sm, names("prod"), "v1")
    create_model(sm, names("shadow"), "v2")
    create_config(sm, names("cfg"), names("prod"), variant="AllTraffic", count=1)
    sm.create_endpoint(EndpointName=names("ep"), EndpointConfigName=names("cfg"))
    assert wait_status(sm, names("ep"))["EndpointStatus"] == "InService"
    return names("ep")


def test_shadow_api_sample_promote(sm, smr, s3, boosters, names, endpoint):
    destination = f"s3://{BUCKET}/data-capture/{names('exp')}"
    sm.create_inference_experiment(
        Name=names("exp"), Type="ShadowMode", Description="shadow test", RoleArn=ROLE, EndpointName=endpoint,
        ModelVariants=[variant_config(names("prod"), "AllTraffic"), variant_config(names("shadow"), "Shadow-01")],
        DataStorageConfig={"Destination": destination},
        ShadowModeConfig={"SourceModelVariantName": "AllTraffic",
                          "ShadowModelVariants": [{"ShadowModelVariantName": "Shadow-01", "SamplingPercentage": 100}]})
    assert sm.describe_inference_experiment(Name=names("exp"))["Status"] in ("Creating", "Created", "Starting")
    desc = wait_experiment(sm, names("exp"), ("Running",))
    assert desc["Status"] == "Running"
    assert {v["VariantName"]: v["Status"] for v in desc["ModelVariants"]} == {"AllTraffic": "InService",
                                                                               "Shadow-01": "InService"}
    assert desc["EndpointMetadata"]["EndpointStatus"] == "InService"
    assert sm.describe_endpoint(EndpointName=endpoint)["ShadowProductionVariants"][0]["VariantName"] == "Shadow-01"
    with pytest.raises(ClientError) as exc:  # one experiment per endpoint
        sm.create_inference_experiment(
            Name=names("exp2"), Type="ShadowMode", RoleArn=ROLE, EndpointName=endpoint,
            ModelVariants=[variant_config(names("prod"), "AllTraffic"), variant_config(names("shadow"), "S2")],
            ShadowModeConfig={"SourceModelVariantName": "AllTraffic",
                              "ShadowModelVariants": [{"ShadowModelVariantName": "S2", "SamplingPercentage": 10}]})
    assert exc.value.response["Error"]["Code"] == "ResourceInUse"

    # the caller only ever sees production: answers equal the production model's own predictions
    rows = [row(i) for i in range(40)]
    expected = boosters["v1"].inplace_predict(
        np.array([[float(v) for v in r.split(",")] for r in rows], dtype=np.float32))
    for i, r in enumerate(rows):
        resp = smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=r,
                                   InferenceId=f"shadow test, index {i}")
        assert resp["InvokedProductionVariant"] == "AllTraffic"
        assert float(resp["Body"].read()) == pytest.approx(float(expected[i]), abs=1e-6)

    prefix = f"data-capture/{names('exp')}/{endpoint}/"
    ids = {f"shadow test, index {i}" for i in range(40)}

    def captured():
        by_variant: dict[str, dict[str, dict]] = {"AllTraffic": {}, "Shadow-01": {}}
        for rec in read_capture(s3, prefix):
            variant = rec["_key"][len(prefix):].split("/")[0]
            assert rec["eventVersion"] == "0"
            assert rec["captureData"]["endpointInput"]["encoding"] == "CSV"
            assert rec["captureData"]["endpointInput"]["mode"] == "INPUT"
            by_variant[variant][rec["eventMetadata"]["inferenceId"]] = rec
        assert set(by_variant["AllTraffic"]) == ids and set(by_variant["Shadow-01"]) == ids  # 100 % sampled, paired
        return by_variant

    by_variant = eventually(captured)
    shadow_preds = boosters["v2"].inplace_predict(
        np.array([[float(v) for v in r.split(",")] for r in rows], dtype=np.float32))
    rec = by_variant["Shadow-01"]["shadow test, index 3"]
    assert rec["captureData"]["endpointInput"]["data"] == rows[3]
    assert float(rec["captureData"]["endpointOutput"]["data"]) == pytest.approx(float(shadow_preds[3]), abs=1e-6)
    key_parts = by_variant["Shadow-01"]["shadow test, index 3"]["_key"][len(prefix):].split("/")
    assert len(key_parts) == 6 and key_parts[1] == f"{datetime.now(UTC):%Y}"  # variant/yyyy/mm/dd/hh/file

    sm.stop_inference_experiment(Name=names("exp"), ModelVariantActions={"Shadow-01": "Promote", "AllTraffic": "Remove"},
                                 DesiredState="Completed", Reason="Shadow variant performed better in validation")
    desc = wait_experiment(sm, names("exp"), ("Completed", "Cancelled"))
    assert desc["Status"] == "Completed"
    assert desc["StatusReason"] == "Shadow variant performed better in validation"
    assert "CompletionTime" in desc
    ep = wait_status(sm, endpoint, ("InService",))
    assert [v["VariantName"] for v in ep["ProductionVariants"]] == ["Shadow-01"]
    assert "ShadowProductionVariants" not in ep
    config = sm.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ModelName"] == names("shadow")
    resp = smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=rows[5])
    assert resp["InvokedProductionVariant"] == "Shadow-01"
    assert float(resp["Body"].read()) == pytest.approx(float(shadow_preds[5]), abs=1e-6)
    listed = sm.list_inference_experiments(NameContains=names("exp"))["InferenceExperiments"]
    assert [e["Status"] for e in listed] == ["Completed"]


def test_failing_shadow_never_reaches_the_caller(sm, smr, cloudwatch, names, endpoint):
    create_model(sm, names("bad"), "incompatible")
    sm.create_inference_experiment(
        Name=names("exp"), Type="ShadowMode", RoleArn=ROLE, EndpointName=endpoint,
        ModelVariants=[variant_config(names("prod"), "AllTraffic"), variant_config(names("bad"), "Bad-Shadow")],
        ShadowModeConfig={"SourceModelVariantName": "AllTraffic",
                          "ShadowModelVariants": [{"ShadowModelVariantName": "Bad-Shadow", "SamplingPercentage": 50}]})
    assert wait_experiment(sm, names("exp"), ("Running",))["Status"] == "Running"
    for i in range(60):
        resp = smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row(i))
        assert 0 <= float(resp["Body"].read()) <= 1
    def flushed():
        prod = metric_stats(cloudwatch, "Invocation5XXErrors", endpoint, "AllTraffic", names("cfg"))
        assert (prod["Sum"], prod["SampleCount"]) == (0, 60)
        stats = metric_stats(cloudwatch, "Invocation5XXErrors", endpoint, "Bad-Shadow", names("cfg"))
        assert 10 <= stats["SampleCount"] <= 50  # ~50 % of 60 mirrored
        assert stats["Sum"] == stats["SampleCount"]  # every shadow call failed, none was seen by a caller

    eventually(flushed)

    sm.stop_inference_experiment(Name=names("exp"), ModelVariantActions={"Bad-Shadow": "Remove", "AllTraffic": "Retain"},
                                 DesiredState="Cancelled", Reason="shadow errors")
    desc = wait_experiment(sm, names("exp"), ("Completed", "Cancelled"))
    assert desc["Status"] == "Cancelled"
    ep = wait_status(sm, endpoint, ("InService",))
    assert ep["EndpointConfigName"] == names("cfg") and "ShadowProductionVariants" not in ep


def test_schedule_end_completes_and_restores(sm, smr, names, endpoint):
    start = datetime.now(UTC)
    sm.create_inference_experiment(
        Name=names("exp"), Type="ShadowMode", RoleArn=ROLE, EndpointName=endpoint,
        Schedule={"StartTime": start, "EndTime": start + timedelta(seconds=3)},
        ModelVariants=[variant_config(names("prod"), "AllTraffic"), variant_config(names("shadow"), "Shadow-01")],
        ShadowModeConfig={"SourceModelVariantName": "AllTraffic",
                          "ShadowModelVariants": [{"ShadowModelVariantName": "Shadow-01", "SamplingPercentage": 100}]})
    assert wait_experiment(sm, names("exp"), ("Running",))["Status"] == "Running"
    desc = wait_experiment(sm, names("exp"), ("Completed",), timeout=10)
    assert desc["Status"] == "Completed"
    assert {v["VariantName"]: v["Status"] for v in desc["ModelVariants"]}["Shadow-01"] == "Deleted"
    ep = sm.describe_endpoint(EndpointName=endpoint)
    assert ep["EndpointConfigName"] == names("cfg") and "ShadowProductionVariants" not in ep
    with pytest.raises(ClientError) as exc:
        sm.stop_inference_experiment(Name=names("exp"), ModelVariantActions={"Shadow-01": "Remove"})
    assert exc.value.response["Error"]["Code"] == "ConflictException"


def test_scheduled_experiment_waits_in_created_until_started(sm, names, endpoint):
    start = datetime.now(UTC) + timedelta(hours=1)
    sm.create_inference_experiment(
        Name=names("exp"), Type="ShadowMode", RoleArn=ROLE, EndpointName=endpoint,
        Schedule={"StartTime": start, "EndTime": start + timedelta(hours=2)},
        ModelVariants=[variant_config(names("prod"), "AllTraffic"), variant_config(names("shadow"), "Shadow-01")],
        ShadowModeConfig={"SourceModelVariantName": "AllTraffic",
                          "ShadowModelVariants": [{"ShadowModelVariantName": "Shadow-01", "SamplingPercentage": 10}]})
    desc = wait_experiment(sm, names("exp"), ("Created",))
    time.sleep(0.3)
    assert sm.describe_inference_experiment(Name=names("exp"))["Status"] == "Created"
    assert desc["Schedule"]["StartTime"].timestamp() == pytest.approx(start.timestamp(), abs=1)
    sm.start_inference_experiment(Name=names("exp"))
    assert wait_experiment(sm, names("exp"), ("Running",))["Status"] == "Running"
    sm.stop_inference_experiment(Name=names("exp"), ModelVariantActions={"Shadow-01": "Remove"})
    assert wait_experiment(sm, names("exp"), ("Completed",))["Status"] == "Completed"


def test_shadow_production_variants_in_an_endpoint_config(sm, smr, cloudwatch, names):
    """EX-SHCON: shadow via the endpoint config; InitialVariantWeight 0.5 vs 1 mirrors 50 %."""
    create_model(sm, names("p"), "v1")
    create_model(sm, names("s"), "v2")
    sm.create_endpoint_config(
        EndpointConfigName=names("cfg"),
        ProductionVariants=[{"VariantName": "production", "ModelName": names("p"), "InstanceType": "ml.m5.xlarge",
                             "InitialInstanceCount": 2, "InitialVariantWeight": 1}],
        ShadowProductionVariants=[{"VariantName": "shadow", "ModelName": names("s"), "InstanceType": "ml.m5.xlarge",
                                   "InitialInstanceCount": 1, "InitialVariantWeight": 0.5}],
        MetricsConfig=FAST_METRICS)
    sm.create_endpoint(EndpointName=names("ep"), EndpointConfigName=names("cfg"))
    ep = wait_status(sm, names("ep"))
    assert ep["ShadowProductionVariants"][0]["VariantName"] == "shadow"
    for i in range(200):
        resp = smr.invoke_endpoint(EndpointName=names("ep"), ContentType="text/csv", Body=row(i))
        assert resp["InvokedProductionVariant"] == "production"
    def flushed():
        counts = {v: metric_stats(cloudwatch, "Invocations", names("ep"), v, names("cfg"))["Sum"]
                  for v in ("production", "shadow")}
        assert counts["production"] == 200
        assert 60 <= counts["shadow"] <= 140  # binomial(200, 0.5)

    eventually(flushed)
