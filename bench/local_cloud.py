"""Local cloud numbers: start-up and deploy time, Lambda cold/warm invocation latency, upload -> execution.

    .venv/bin/python bench/local_cloud.py [--invocations 200] [--uploads 10]

1. LambdaRuntime alone (no moto): cold start of a worker, then warm invocations (direct call and through
   the boto3 `before-call` hook that moto's Step Functions interpreter uses).
2. A spawned local cloud with the project's template.yaml + samconfig [local]: time to ready.
3. In it: S3 upload of model.tar.gz -> EventBridge bridge -> execution visible in ListExecutions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.cloud import LocalCloud  # noqa: E402
from local.env import client  # noqa: E402
from local.lambda_runtime import FunctionConfig, LambdaRuntime  # noqa: E402

HANDLERS = ROOT / "tests" / "local" / "fixtures" / "handlers"


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def bench_runtime(invocations: int) -> None:
    def describe(name: str) -> FunctionConfig:
        return FunctionConfig(name="echo", arn="arn:aws:lambda:us-east-1:123456789012:function:echo",
                              handler="app.echo", timeout=10, code_dir=HANDLERS)

    with tempfile.TemporaryDirectory() as tmp:
        colds = []
        for _ in range(5):  # a fresh runtime each time: no warm worker
            cold = LambdaRuntime({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, Path(tmp), describe=describe)
            start = time.perf_counter()
            cold.invoke("echo", b"{}")
            colds.append((time.perf_counter() - start) * 1000)
            cold.stop()
        runtime = LambdaRuntime({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, Path(tmp), describe=describe)
        try:
            runtime.invoke("echo", b"{}")
            warm = []
            for _ in range(invocations):
                start = time.perf_counter()
                runtime.invoke("echo", b'{"k": 1}')
                warm.append((time.perf_counter() - start) * 1000)
            saved, boto3.DEFAULT_SESSION = boto3.DEFAULT_SESSION, None
            runtime.install()
            lam = boto3.client("lambda", region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                               aws_access_key_id="a", aws_secret_access_key="b")
            hooked = []
            for _ in range(invocations):
                start = time.perf_counter()
                lam.invoke(FunctionName="echo", Payload=b'{"k": 1}')["Payload"].read()
                hooked.append((time.perf_counter() - start) * 1000)
            boto3.DEFAULT_SESSION = saved
        finally:
            runtime.stop()
    print(f"runtime cold start (spawn + import + invoke), 5 runs: median {statistics.median(colds):.0f} ms, "
          f"max {max(colds):.0f} ms")
    print(f"runtime warm invoke, {invocations}: p50 {pct(warm, 50):.2f} ms, p95 {pct(warm, 95):.2f} ms")
    print(f"boto3 Invoke through the hook, {invocations}: p50 {pct(hooked, 50):.2f} ms, p95 {pct(hooked, 95):.2f} ms")


def bench_cloud(uploads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cloud = LocalCloud.spawn(tmp)
        ready = time.perf_counter() - start
        try:
            print(f"LocalCloud.spawn with template.yaml deployed: ready in {ready:.1f} s")
            s3, sfn = client("s3", cloud.env), client("stepfunctions", cloud.env)
            bucket, machine = cloud.outputs["ModelBucketName"], cloud.outputs["StateMachineArn"]
            latencies = []
            for i in range(uploads):
                seen = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
                start = time.perf_counter()
                s3.put_object(Bucket=bucket, Key=f"models/bench/v{i}/model.tar.gz", Body=b"x")
                while not [e for e in sfn.list_executions(stateMachineArn=machine)["executions"]
                           if e["executionArn"] not in seen]:
                    time.sleep(0.005)
                latencies.append((time.perf_counter() - start) * 1000)
            print(f"upload -> execution listed, {uploads} uploads: median {statistics.median(latencies):.0f} ms, "
                  f"max {max(latencies):.0f} ms")
        finally:
            cloud.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--invocations", type=int, default=200)
    parser.add_argument("--uploads", type=int, default=10)
    args = parser.parse_args()
    bench_runtime(args.invocations)
    bench_cloud(args.uploads)
