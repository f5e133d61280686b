"""AWS's documented rules, each pinned by a test that fails without it (sources in docs/aws-conformance.md)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import create_config, create_model, wait_status

CANARY = {"BlueGreenUpdatePolicy": {
    "TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                                    "WaitIntervalInSeconds": 0},
    "MaximumExecutionTimeoutInSeconds": 600}}


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture
def live(sm, names):
    """An InService endpoint whose production variant is AllTraffic (model v1)."""
    create_model(sm, names("m1"), "v1")
    create_model(sm, names("m2"), "v2")
    create_config(sm, names("c1"), names("m1"), variant="AllTraffic", count=2)
    sm.create_endpoint(EndpointName=names("e"), EndpointConfigName=names("c1"))
    assert wait_status(sm, names("e"))["EndpointStatus"] == "InService"
    return names("e")


def test_guarded_update_needs_the_same_variant_name(sm, names, live):
    """deployment-guardrails-exclusions: the new config must have the same variant name as the old one."""
    create_config(sm, names("renamed"), names("m2"), variant="v-model-2", count=2)
    code, message = error_of(sm.update_endpoint, EndpointName=live, EndpointConfigName=names("renamed"),
                             DeploymentConfig=CANARY)
    assert code == "ValidationException" and "same production variant names" in message
    desc = sm.describe_endpoint(EndpointName=live)
    assert desc["EndpointStatus"] == "InService" and desc["EndpointConfigName"] == names("c1")
    assert "PendingDeploymentSummary" not in desc

    create_config(sm, names("same"), names("m2"), variant="AllTraffic", count=2)
    sm.update_endpoint(EndpointName=live, EndpointConfigName=names("same"), DeploymentConfig=CANARY)
    assert wait_status(sm, live, ("InService",))["EndpointConfigName"] == names("same")


def test_retained_deployment_config_is_a_guarded_update_too(sm, names, live):
    create_config(sm, names("same"), names("m2"), variant="AllTraffic", count=2)
    sm.update_endpoint(EndpointName=live, EndpointConfigName=names("same"), DeploymentConfig=CANARY)
    assert wait_status(sm, live, ("InService",))["EndpointConfigName"] == names("same")
    create_config(sm, names("renamed"), names("m1"), variant="Other", count=2)
    code, _ = error_of(sm.update_endpoint, EndpointName=live, EndpointConfigName=names("renamed"),
                       RetainDeploymentConfig=True)
    assert code == "ValidationException"
