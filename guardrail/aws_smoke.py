"""`make aws-smoke`: deploy Guardrail into the caller's AWS account, run four scenarios, print each step's AWS
outcome and the estimated cost, and tear everything down (also on failure or Ctrl-C).

    python -m guardrail.aws_smoke [--stack-name guardrail-smoke] [--keep]   # real AWS (samconfig [smoke])
    python -m guardrail.aws_smoke --local                                   # the same run on the local cloud

Scenarios (guardrail/scenarios.py, driven by guardrail/demo.py's Target abstraction, the code `guardrail demo` uses):
first deployment, guarded canary update, rollback (incompatible model), shadow test (promote). The smallest
real-time instance (samconfig [smoke]: ml.t2.medium x 1) keeps the bill to cents; the estimate below is printed
before the run and after it. Stateful resources carry DeletionPolicy Retain (audit row 21), so the teardown deletes
them explicitly after `sam delete`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
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


@dataclass
class Step:
    name: str
    outcome: str | None
    expected: str
    seconds: float
    transitions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected and not self.problems


def estimate_cost(steps: list[Step], instance_type: str, instances: int, idle_seconds: float = 0.0) -> float:
    """Endpoint instance time (two fleets during updates and shadow tests) + Step Functions transitions."""
    price = PRICE_PER_HOUR[instance_type] / 3600
    compute = sum(s.seconds * FLEETS.get(s.name, 1.0) for s in steps) + idle_seconds
    return round(compute * instances * price + sum(s.transitions for s in steps) * STATE_TRANSITION_USD, 4)


def teardown(clients: dict[str, Any], stack: str, endpoint: str, outputs: dict[str, str]) -> list[str]:
    """Delete everything the stack and its executions created. Returns what was deleted (printed)."""
    sm, cw = clients["sagemaker"], clients["cloudwatch"]
    done: list[str] = []
    for exp in sm.list_inference_experiments(StatusEquals="Running").get("InferenceExperiments", []):
        if exp["Name"].startswith(endpoint):
            config = sm.describe_inference_experiment(Name=exp["Name"]).get("ShadowModeConfig") or {}
            actions = {config["SourceModelVariantName"]: "Retain"} | {
                v["ShadowModelVariantName"]: "Remove" for v in config.get("ShadowModelVariants", [])
            }
            sm.stop_inference_experiment(Name=exp["Name"], ModelVariantActions=actions, DesiredState="Cancelled",
                                         Reason="aws-smoke teardown")  # fmt: skip
            done.append(f"experiment {exp['Name']}")
    with contextlib.suppress(sm.exceptions.ClientError):
        sm.delete_endpoint(EndpointName=endpoint)
        done.append(f"endpoint {endpoint}")
    for cfg in sm.list_endpoint_configs(NameContains=endpoint).get("EndpointConfigs", []):
        sm.delete_endpoint_config(EndpointConfigName=cfg["EndpointConfigName"])
        done.append(f"endpoint config {cfg['EndpointConfigName']}")
    for model in sm.list_models(NameContains=endpoint).get("Models", []):
        sm.delete_model(ModelName=model["ModelName"])
        done.append(f"model {model['ModelName']}")
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
        clients["kms"].schedule_key_deletion(KeyId=outputs["TopicKeyArn"], PendingWindowInDays=7)
        done.append("topic key (deletion in 7 days)")
    with contextlib.suppress(clients["logs"].exceptions.ResourceNotFoundException):
        clients["logs"].delete_log_group(logGroupName=f"/aws/vendedlogs/states/{stack}-guardrail")
        done.append("state machine log group")
    return done


def run_scenarios(target: Any, models_dir: Path) -> list[Step]:
    from guardrail import demo, scenarios

    data = demo.holdout(models_dir)
    steps = []
    for key in SCENARIOS:
        scenario = next(s for s in scenarios.SCENARIOS if s.key == key)
        result = demo.run_scenario(target, scenario, models_dir, data)
        steps.append(Step(key, result.actual, scenario.expected, result.seconds, len(result.path), result.problems))
        status = "ok" if steps[-1].ok else "UNEXPECTED"
        print(f"  {key:20} {result.actual or '-':16} expected {scenario.expected:16} {result.seconds:7.0f} s  {status}")
        for problem in result.problems:
            print(f"      {problem}")
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", default="guardrail-smoke")
    parser.add_argument("--models", default="artifacts/models", type=Path)
    parser.add_argument("--local", action="store_true", help="run on the local cloud (`guardrail up` first)")
    parser.add_argument("--keep", action="store_true", help="skip the teardown")
    parser.add_argument("--instance-type", default="ml.t2.medium")
    args = parser.parse_args(argv)
    from guardrail import demo

    if args.local:
        target = demo.Target.local()
        print("aws-smoke on the local cloud")
        steps = run_scenarios(target, args.models)
        print(f"estimated cost on AWS: ${estimate_cost(steps, args.instance_type, 1):.4f}")
        return 0 if all(s.ok for s in steps) else 1

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
    try:
        steps = run_scenarios(target, args.models)
    finally:
        print(f"estimated cost of this run: ${estimate_cost(steps, args.instance_type, 1):.4f}")
        if not args.keep:
            names = ("sagemaker", "cloudwatch", "cloudformation", "s3", "dynamodb", "kms", "logs")
            for item in teardown({n: boto3.client(n) for n in names}, args.stack_name, target.endpoint_name, outputs):
                print(f"  deleted {item}")
    return 0 if steps and all(s.ok for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
