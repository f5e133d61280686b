"""Deleting what an endpoint uses, as AWS answers it (issue 14 §6: housekeeping's checks are ours, not AWS's).

API_DeleteEndpointConfig: "You must not delete an EndpointConfig in use by an endpoint that is live or while the
UpdateEndpoint or CreateEndpoint operations are being performed on the endpoint. If you delete the EndpointConfig
of an endpoint that is active or being created or updated you may lose visibility into the instance type the
endpoint is using." The API lists no error for it, so the call succeeds and the endpoint keeps serving.
API_DeleteModel: "The DeleteModel API deletes only the model entry that was created in SageMaker when you called
the CreateModel API": the running endpoint is not touched either. Where AWS is silent (what DescribeEndpoint
shows afterwards), the emulator keeps the name the endpoint was created with.
"""

from __future__ import annotations

import pytest
from emulator_helpers import create_config, create_model, row, wait_status


def test_deleting_an_in_use_config_and_model_succeeds_and_the_endpoint_keeps_serving(sm, smr, names):
    model, config, endpoint = names("m"), names("cfg"), names("ep")
    create_model(sm, model, "v1")
    create_config(sm, config, model, count=1)
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    assert wait_status(sm, endpoint)["EndpointStatus"] == "InService"

    sm.delete_endpoint_config(EndpointConfigName=config)  # not refused, as on AWS
    sm.delete_model(ModelName=model)
    with pytest.raises(sm.exceptions.ClientError, match="Could not find endpoint configuration"):
        sm.describe_endpoint_config(EndpointConfigName=config)
    with pytest.raises(sm.exceptions.ClientError, match="Could not find model"):
        sm.describe_model(ModelName=model)

    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == config
    answer = smr.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row(1))
    assert float(answer["Body"].read()) >= 0
    sm.delete_endpoint(EndpointName=endpoint)
