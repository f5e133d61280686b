"""`make aws-smoke`: deploy Guardrail into the caller's AWS account, run four scenarios, print each step's AWS
outcome and the estimated cost, and tear everything down (also on failure or Ctrl-C).

    python -m guardrail.aws_smoke [--stack-name guardrail-smoke] [--keep]   # real AWS (samconfig [smoke])
    python -m guardrail.aws_smoke --local                                   # the same run on its own local cloud

Scenarios (guardrail/scenarios.py, driven by guardrail/demo.py's Target abstraction, the code `guardrail demo` uses):
first deployment, guarded canary update, rollback (incompatible model), shadow test (promote). The smallest
real-time instance (samconfig [smoke]: ml.t2.medium x 1) keeps the bill to cents; the estimate below is printed
before the run and after it. Stateful resources carry DeletionPolicy Retain (audit row 21), so the teardown deletes
them explicitly after `sam delete`.

The run needs an endpoint of its own: its first deployment must create it (an update of a serving endpoint with
no traffic is rolled back by the evidence policy, functions/steps/evidence.py). On AWS the smoke stack names one
(samconfig [smoke] EndpointName); `--local` starts a local cloud of its own with that endpoint name. Traffic is
the demo's (guardrail/traffic.py, each scenario's rate) and runs through the bakes and the watch, so the guarded
update ends DEPLOYED with evidence (the new fleet's request count is checked and printed). The notifications are
read from an SQS queue subscribed to the stack's topic (locally the cloud's alert queue).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAM = str(ROOT / ".venv-sam" / "bin" / "sam")
SCENARIOS = ("first-deployment", "successful-update", "incompatible-model", "shadow-promote")
# On-demand real-time inference, us-east-1, USD per instance-hour (SageMaker pricing page; verify for the region).
PRICE_PER_HOUR = {"ml.t2.medium": 0.056, "ml.m5.large": 0.115, "ml.m5.xlarge": 0.23}
STATE_TRANSITION_USD = 0.000025  # Step Functions Standard
# Instances billed per scenario relative to one fleet: blue/green and shadow tests run two fleets for a while.
FLEETS = {"first-deployment": 1.0, "successful-update": 2.0, "incompatible-model": 2.0, "shadow-promote": 2.0}
ENDPOINT = "guardrail-smoke"  # samconfig [smoke] EndpointName; `--local` gives its own cloud the same
LOCAL_WORKDIR = Path(".guardrail/smoke")
# Per scenario on AWS: creating or updating an endpoint takes minutes (the table's timeouts are the local cloud's).
AWS_SCENARIO_TIMEOUT = 1800.0


class SmokeError(RuntimeError):
    """The smoke run cannot start (its endpoint exists already...)."""


@dataclass
class Step:
    name: str
    outcome: str | None
    expected: str
    seconds: float
    transitions: int = 0
    problems: list[str] = field(default_factory=list)
    evidence: str | None = None  # what the update's new fleet served (functions.steps.evidence.describe)

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected and not self.problems


def estimate_cost(steps: list[Step], instance_type: str, instances: int, idle_seconds: float = 0.0) -> float:
    """Endpoint instance time (two fleets during updates and shadow tests) + Step Functions transitions."""
    price = PRICE_PER_HOUR[instance_type] / 3600
    compute = sum(s.seconds * FLEETS.get(s.name, 1.0) for s in steps) + idle_seconds
    return round(compute * instances * price + sum(s.transitions for s in steps) * STATE_TRANSITION_USD, 4)


def created_names(endpoint: str) -> list[Any]:
    """The SageMaker names the smoke scenarios give their models and configs (functions.steps.names): they carry
    the model's name and version, not the endpoint's, so they are named exactly rather than searched for."""
    from functions.steps.names import resource_names
    from guardrail import scenarios

    return [resource_names(endpoint, scenarios.MODEL_NAME, scenarios.BY_KEY[key].version, "") for key in SCENARIOS]


def teardown(clients: dict[str, Any], stack: str, endpoint: str, outputs: dict[str, str]) -> list[str]:
    """Delete everything the stack and its executions created. Returns what was deleted (printed)."""
    sm, cw = clients["sagemaker"], clients["cloudwatch"]
    done: list[str] = []
    for exp in sm.list_inference_experiments(StatusEquals="Running").get("InferenceExperiments", []):
        described = sm.describe_inference_experiment(Name=exp["Name"])
        if (described.get("EndpointMetadata") or {}).get("EndpointName") == endpoint:
            config = described.get("ShadowModeConfig") or {}
            actions = {config["SourceModelVariantName"]: "Retain"} | {
                v["ShadowModelVariantName"]: "Remove" for v in config.get("ShadowModelVariants", [])
            }
            sm.stop_inference_experiment(Name=exp["Name"], ModelVariantActions=actions, DesiredState="Cancelled",
                                         Reason="aws-smoke teardown")  # fmt: skip
            done.append(f"experiment {exp['Name']}")
    with contextlib.suppress(sm.exceptions.ClientError):
        sm.delete_endpoint(EndpointName=endpoint)
        done.append(f"endpoint {endpoint}")
    for names in created_names(endpoint):
        with contextlib.suppress(sm.exceptions.ClientError):  # not created (a rejected or failed scenario)
            sm.delete_endpoint_config(EndpointConfigName=names.endpoint_config)
            done.append(f"endpoint config {names.endpoint_config}")
        with contextlib.suppress(sm.exceptions.ClientError):
            sm.delete_model(ModelName=names.model)
            done.append(f"model {names.model}")
    # The config a promoting inference experiment makes for the endpoint is named by SageMaker, after the endpoint.
    for cfg in sm.list_endpoint_configs(NameContains=endpoint).get("EndpointConfigs", []):
        sm.delete_endpoint_config(EndpointConfigName=cfg["EndpointConfigName"])
        done.append(f"endpoint config {cfg['EndpointConfigName']}")
    alarms = [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=f"guardrail-{endpoint}-")["MetricAlarms"]]
    if alarms:
        cw.delete_alarms(AlarmNames=alarms)
        done.append(f"{len(alarms)} alarms")
    cfn = clients["cloudformation"]
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack)
    done.append(f"stack {stack}")
    # DeletionPolicy Retain: what the stack left behind on purpose.
    bucket = outputs.get("ModelBucketName")
    if bucket:
        s3 = clients["s3"]
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                       for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]  # fmt: skip
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
        done.append(f"bucket {bucket}")
    if outputs.get("TableName"):
        clients["dynamodb"].delete_table(TableName=outputs["TableName"])
        done.append(f"table {outputs['TableName']}")
    if outputs.get("TopicKeyArn"):
        # The key id (the ARN's last part): AWS takes either, moto's KMS only the id.
        key_id = outputs["TopicKeyArn"].rsplit("/", 1)[-1]
        clients["kms"].schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        done.append("topic key (deletion in 7 days)")
    with contextlib.suppress(clients["logs"].exceptions.ResourceNotFoundException):
        clients["logs"].delete_log_group(logGroupName=f"/aws/vendedlogs/states/{stack}-guardrail")
        done.append("state machine log group")
    return done


class QueueAlerts:
    """The stack's notifications on AWS: an SQS queue subscribed to its topic for the run (deleted by `close`).
    `wait_for` as local.alerts.AlertStream's."""

    def __init__(self, client: Any, topic_arn: str, name: str | None = None) -> None:
        self.sqs, self.sns = client("sqs"), client("sns")
        name = name or f"guardrail-smoke-alerts-{uuid.uuid4().hex[:8]}"
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        queue_arn = arn["QueueArn"]
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]}  # fmt: skip
        self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
        self.subscription = self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                                               ReturnSubscriptionArn=True)["SubscriptionArn"]  # fmt: skip

    def wait_for(self, predicate: Any = None, timeout: float = 60.0) -> Any:
        from local.alerts import Alert

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait = int(max(0, min(5, deadline - time.monotonic())))
            for message in self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=wait).get("Messages", []):  # fmt: skip
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                alert = Alert.from_envelope(json.loads(message["Body"]))
                if predicate is None or predicate(alert):
                    return alert
        raise TimeoutError(f"no matching alert within {timeout:.0f} s")

    def close(self) -> list[str]:
        self.sns.unsubscribe(SubscriptionArn=self.subscription)
        self.sqs.delete_queue(QueueUrl=self.queue_url)
        return [f"alert queue {self.queue_url.rsplit('/', 1)[-1]}"]


def evidence_problems(key: str, doc: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(what the new fleet served, what is wrong): the first deployment must create the endpoint, and an update
    that ends DEPLOYED must have been verified by traffic (issue 11 §3: no evidence, no promotion)."""
    from functions.models import DeploymentEvidence
    from functions.steps.evidence import describe

    deployment = doc.get("deployment") or {}
    raw = (doc.get("watch") or {}).get("evidence")
    evidence = DeploymentEvidence.model_validate(raw) if raw else None
    problems = []
    if key == "first-deployment" and deployment.get("mode") not in (None, "CREATE"):
        problems.append(f"the first deployment was a {deployment.get('mode')}: the endpoint existed already")
    deployed_update = doc.get("outcome") == "DEPLOYED" and deployment.get("previous_config")
    if deployed_update and (evidence is None or not evidence.sufficient):
        problems.append(f"deployed without evidence: {describe(evidence) or 'no request count'}")
    return describe(evidence), problems


def check_own_endpoint(target: Any) -> None:
    from guardrail.demo import endpoint_view

    status = endpoint_view(target.client("sagemaker"), target.endpoint_name).status
    if status is not None:
        raise SmokeError(
            f"endpoint {target.endpoint_name} exists already ({status}): the smoke run's first deployment must "
            "create its own endpoint (an update of it without traffic would be rolled back for lack of evidence); "
            "delete it, or use a fresh stack (`--local` starts a cloud of its own)"
        )


def run_scenarios(target: Any, models_dir: Path, alerts: Any = None, timeout: float | None = None) -> list[Step]:
    """The four scenarios on `target`'s endpoint, which must not exist yet; `timeout` per scenario (seconds)."""
    from guardrail import demo, scenarios

    check_own_endpoint(target)
    data = demo.holdout(models_dir)
    sfn = target.client("stepfunctions")
    steps = []
    for key in SCENARIOS:
        scenario = next(s for s in scenarios.SCENARIOS if s.key == key)
        if timeout is not None:
            scenario = scenario.model_copy(update={"timeout_seconds": timeout})
        result = demo.run_scenario(target, scenario, models_dir, data, alerts=alerts)
        doc = demo.final_document(sfn, result.execution_arn)[1] if result.execution_arn else {}
        evidence, problems = evidence_problems(key, doc)
        steps.append(Step(key, result.actual, scenario.expected, result.seconds, len(result.path),
                          result.problems + problems, evidence))  # fmt: skip
        status = "ok" if steps[-1].ok else "UNEXPECTED"
        print(f"  {key:20} {result.actual or '-':16} expected {scenario.expected:16} {result.seconds:7.0f} s  {status}")
        if evidence:
            print(f"      evidence: {evidence}")
        for problem in steps[-1].problems:
            print(f"      {problem}")
    return steps


def local_cloud(workdir: Path = LOCAL_WORKDIR) -> Any:
    """A local cloud of the smoke run's own, its stack's endpoint named as the smoke stack's (samconfig [local]
    timings: seconds, not minutes)."""
    from local.cloud import LocalCloud

    return LocalCloud.spawn(workdir, parameter_overrides={"EndpointName": ENDPOINT}, timeout=300)


def local_target(cloud: Any) -> Any:
    from guardrail.demo import Target

    return Target.from_outputs(cloud.outputs, cloud.state.state_machines, cloud.env, cloud.state.alert_queue_url)


def run_local(models_dir: Path, workdir: Path = LOCAL_WORKDIR, instance_type: str = "ml.t2.medium") -> int:
    from local.alerts import AlertStream

    print(f"aws-smoke on a local cloud of its own ({workdir}, endpoint {ENDPOINT})")
    cloud = local_cloud(workdir)
    steps: list[Step] = []
    try:
        target = local_target(cloud)
        steps = run_scenarios(target, models_dir, AlertStream(target.env, target.alert_queue_url))
        names = ("sagemaker", "cloudwatch", "cloudformation", "s3", "dynamodb", "kms", "logs")
        for item in teardown({n: target.client(n) for n in names}, cloud.state.stack_name, ENDPOINT, cloud.outputs):
            print(f"  deleted {item}")
    finally:
        cloud.stop()
    print(f"estimated cost on AWS: ${estimate_cost(steps, instance_type, 1):.4f}")
    return 0 if all(s.ok for s in steps) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", default="guardrail-smoke")
    parser.add_argument("--models", default="artifacts/models", type=Path)
    parser.add_argument("--local", action="store_true", help="run on a local cloud of its own")
    parser.add_argument("--keep", action="store_true", help="skip the teardown")
    parser.add_argument("--instance-type", default="ml.t2.medium")
    args = parser.parse_args(argv)
    from guardrail import demo

    if args.local:
        return run_local(args.models, instance_type=args.instance_type)

    import boto3

    env = os.environ | {"SAM_CLI_TELEMETRY": "0"}
    print(f"estimated cost (~30 min of one {args.instance_type}, two fleets during updates): "
          f"${estimate_cost([Step(k, None, '', 600) for k in SCENARIOS], args.instance_type, 1):.2f}")  # fmt: skip
    subprocess.run([SAM, "build"], cwd=ROOT, env=env, check=True)
    subprocess.run([SAM, "deploy", "--config-env", "smoke", "--stack-name", args.stack_name,
                    "--no-confirm-changeset"], cwd=ROOT, env=env, check=True)  # fmt: skip
    stack = boto3.client("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    target = demo.Target.aws(args.stack_name)
    steps: list[Step] = []
    alerts = None
    try:
        alerts = QueueAlerts(boto3.client, outputs["TopicArn"])
        steps = run_scenarios(target, args.models, alerts, timeout=AWS_SCENARIO_TIMEOUT)
    finally:
        print(f"estimated cost of this run: ${estimate_cost(steps, args.instance_type, 1):.4f}")
        if not args.keep:
            names = ("sagemaker", "cloudwatch", "cloudformation", "s3", "dynamodb", "kms", "logs")
            done = alerts.close() if alerts is not None else []
            done += teardown({n: boto3.client(n) for n in names}, args.stack_name, target.endpoint_name, outputs)
            for item in done:
                print(f"  deleted {item}")
    return 0 if steps and all(s.ok for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
