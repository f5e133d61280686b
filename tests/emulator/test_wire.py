"""Responses match botocore's output shapes (types, required members, no unknown members)."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

from botocore.validate import ParamValidator
from emulator_helpers import ROLE, create_config, create_model, wait_status

from local.sagemaker.validation import _to_python, operation


def call(url: str, op: str, params: dict) -> dict:
    req = urllib.request.Request(url + "/", data=json.dumps(params).encode(), method="POST", headers={
        "X-Amz-Target": f"SageMaker.{op}", "Content-Type": "application/x-amz-json-1.1"})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"] == "application/x-amz-json-1.1"
        return json.loads(resp.read())


def assert_matches_output_shape(op: str, body: dict) -> None:
    shape = operation(op).output_shape
    report = ParamValidator().validate(_to_python(body, shape), shape)
    assert not report.has_errors(), f"{op}: {report.generate_report()}"


def test_outputs_match_the_service_model(emulator, sm, smr, names):
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    create_config(sm, names("c1"), names("m1"), count=2)
    create_config(sm, names("c2"), names("m2"), variant="AllTraffic", count=2)  # AWS: same name for a guarded update
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    seen = {"DescribeEndpoint:Creating": call(emulator.url, "DescribeEndpoint", {"EndpointName": names("e")})}
    wait_status(sm, names("e"))
    sm.update_endpoint(EndpointName=names("e"), EndpointConfigName=names("c2"), DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
            "Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 1},
            "MaximumExecutionTimeoutInSeconds": 600}})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        d = call(emulator.url, "DescribeEndpoint", {"EndpointName": names("e")})
        seen[f"DescribeEndpoint:{d['EndpointStatus']}:{bool(d.get('PendingDeploymentSummary'))}"] = d
        if d["EndpointStatus"] == "InService":
            break
        time.sleep(0.1)
    assert "DescribeEndpoint:Updating:True" in seen and "DescribeEndpoint:InService:False" in seen
    start = datetime.now(UTC)
    sm.create_inference_experiment(
        Name=names("x"), Type="ShadowMode", RoleArn=ROLE, EndpointName=names("e"),
        Schedule={"StartTime": start, "EndTime": start + timedelta(hours=1)},
        ModelVariants=[{"ModelName": m, "VariantName": v, "InfrastructureConfig": {
            "InfrastructureType": "RealTimeInference",
            "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}}
            for m, v in ((names("m2"), "AllTraffic"), (names("m1"), "shadow"))],
        ShadowModeConfig={"SourceModelVariantName": "AllTraffic",
                          "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 5}]})
    seen["DescribeInferenceExperiment"] = call(emulator.url, "DescribeInferenceExperiment", {"Name": names("x")})
    for op, params in [("DescribeModel", {"ModelName": names("m1")}),
                       ("DescribeEndpointConfig", {"EndpointConfigName": names("c2")}),
                       ("ListModels", {}), ("ListEndpointConfigs", {}), ("ListEndpoints", {}),
                       ("ListInferenceExperiments", {})]:
        seen[op] = call(emulator.url, op, params)
    for key, body in seen.items():
        assert_matches_output_shape(key.split(":")[0], body)
    # timestamps on the wire are epoch seconds
    assert isinstance(seen["DescribeModel"]["CreationTime"], float)
    sm.stop_inference_experiment(Name=names("x"), ModelVariantActions={"shadow": "Remove"})
