"""`make aws-smoke SMOKE_ARGS=--local`: the smoke run's four scenarios end to end on a local cloud of its own (its
endpoint is the smoke stack's, created by the run's first deployment), through the same Target abstraction the
AWS run uses (guardrail/aws_smoke.py), with the demo's traffic through the bakes and the notifications read from
the topic; then its teardown, which must leave nothing of the run behind."""

from __future__ import annotations

import pytest

from guardrail import aws_smoke

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def smoke_cloud(tmp_path_factory):
    handle = aws_smoke.local_cloud(tmp_path_factory.mktemp("smoke-cloud"))
    try:
        yield handle
    finally:
        handle.stop()


def test_aws_smoke_scenarios_pass_on_a_cloud_of_their_own(smoke_cloud, models_dir, capsys):
    from local.alerts import AlertStream

    target = aws_smoke.local_target(smoke_cloud)
    assert target.endpoint_name == aws_smoke.ENDPOINT
    steps = aws_smoke.run_scenarios(target, models_dir, AlertStream(target.env, target.alert_queue_url))
    assert [s.name for s in steps] == list(aws_smoke.SCENARIOS)
    assert all(s.ok for s in steps), [(s.name, s.outcome, s.expected, s.problems) for s in steps]
    # The guarded update was verified by the traffic it served, not let through for lack of it.
    update = next(s for s in steps if s.name == "successful-update")
    assert update.outcome == "DEPLOYED" and update.evidence and "new fleet served" in update.evidence
    printed = capsys.readouterr().out
    assert all(name in printed for name in aws_smoke.SCENARIOS) and "evidence: the new fleet served" in printed
    assert aws_smoke.estimate_cost(steps, "ml.t2.medium", 1) > 0
    # A second run on the same endpoint is refused before anything is uploaded.
    with pytest.raises(aws_smoke.SmokeError, match="exists already"):
        aws_smoke.run_scenarios(target, models_dir)

    # The teardown, on the same cloud: nothing of the run is left.
    names = ("sagemaker", "cloudwatch", "cloudformation", "s3", "dynamodb", "kms", "logs")
    outputs = smoke_cloud.outputs
    done = aws_smoke.teardown({n: target.client(n) for n in names}, smoke_cloud.state.stack_name,
                              target.endpoint_name, outputs)  # fmt: skip
    sm = target.client("sagemaker")
    assert f"endpoint {aws_smoke.ENDPOINT}" in done and f"bucket {target.bucket}" in done
    created = {n.model for n in aws_smoke.created_names(target.endpoint_name)}
    assert not created & {m["ModelName"] for m in sm.list_models()["Models"]}
    assert not {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
    assert not target.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"guardrail-{aws_smoke.ENDPOINT}-")["MetricAlarms"]
    assert target.bucket not in {b["Name"] for b in target.client("s3").list_buckets()["Buckets"]}
