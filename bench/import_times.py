"""Cold import time of every Lambda handler module, each in a fresh interpreter.

Prints, per handler, the wall-clock median and minimum over N runs and the minimum CPU time (process_time: what
the import itself costs, not inflated when other processes compete for the cores): what the Lambda init phase pays for our code plus
Powertools (with the X-Ray SDK its Tracer loads) and pydantic. boto3 is imported lazily, on the first AWS call.
The floor (pydantic + Powertools alone) is printed first, measured the same way. Target: import < 200 ms.

    .venv/bin/python bench/import_times.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = sorted(p.stem for p in (ROOT / "functions" / "handlers").glob("[a-z]*.py"))
ENV = {
    "TABLE_NAME": "t",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
    "SERVING_IMAGE": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
PROBE = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
__import__("functions.handlers.{name}")
t1, c1 = time.perf_counter(), time.process_time()
print(json.dumps({{"import_ms": (t1 - t0) * 1000, "cpu_ms": (c1 - c0) * 1000, "boto3_loaded": "boto3" in sys.modules}}))
"""


def measure(name: str, runs: int) -> dict[str, float | bool]:
    code = PROBE.format(name=name)
    env = {**os.environ, **ENV, "PYTHONDONTWRITEBYTECODE": "0"}
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "import_ms": statistics.median(r["import_ms"] for r in results),
        "min_ms": min(r["import_ms"] for r in results),
        "cpu_ms": min(r["cpu_ms"] for r in results),
        "boto3_loaded": any(r["boto3_loaded"] for r in results),
    }


def baseline(statement: str, runs: int) -> tuple[float, float]:
    code = f"import time; t=time.process_time(); {statement}; print((time.process_time()-t)*1000)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), {args.runs} fresh interpreters per module"
    )
    for label, stmt in [
        ("pydantic BaseModel", "from pydantic import BaseModel"),
        ("powertools Logger/Metrics/Tracer", "from aws_lambda_powertools import Logger, Metrics, Tracer"),
        (
            "floor: both",
            "from pydantic import BaseModel; from aws_lambda_powertools import Logger, Metrics, Tracer",
        ),
        ("boto3 (lazy, not in the import)", "import boto3"),
    ]:
        median, best = baseline(stmt, args.runs)
        print(f"  baseline {label:<34} cpu median {median:7.1f} ms  min {best:7.1f} ms")
    worst = 0.0
    for name in HANDLERS:
        r = measure(name, args.runs)
        worst = max(worst, float(r["cpu_ms"]))
        flag = "" if r["cpu_ms"] < 200 else "  (over 200 ms)"
        boto = "boto3 imported!" if r["boto3_loaded"] else "boto3 lazy"
        print(
            f"  functions.handlers.{name:<24} cpu min {r['cpu_ms']:6.1f} ms"
            f"  (wall median {r['import_ms']:6.1f}, min {r['min_ms']:6.1f})  {boto}{flag}"
        )
    print(f"worst handler import, CPU time (not inflated by other load): {worst:.1f} ms (target < 200 ms)")


if __name__ == "__main__":
    main()
