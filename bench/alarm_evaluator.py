"""Alarm evaluator cost and detection latency, on an in-process moto.

1. Cost: A alarms (half Average, half p99; Period 10 s) over E endpoints' metrics, with the emulator's load
   shape (per-request values batched as Values/Counts, one datum per second per metric) for S seconds at
   R requests/s. Measures the first evaluate_once (indexes every datapoint) and the steady state (only the
   last second's datapoints are new), per tick and per alarm.
2. Detection: a running evaluator (interval 1 s); 5XX errors published "now" on a 10-s alarm; time from the
   PutMetricData call to DescribeAlarms showing ALARM, over T trials, with and without the open period.

    .venv/bin/python bench/alarm_evaluator.py [--alarms 40] [--endpoints 10] [--seconds 600] [--rate 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
    os.environ.setdefault(key, value)

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from local.alarms import AlarmEvaluator, patch_moto  # noqa: E402


def dims(endpoint: str) -> list[dict[str, str]]:
    return [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": "AllTraffic"},
        {"Name": "EndpointConfigName", "Value": f"{endpoint}-cfg"},
    ]


def publish_second(cw, endpoints: list[str], second: datetime, rate: int, rng: random.Random) -> None:
    per_endpoint = max(1, rate // len(endpoints))
    data = []
    for ep in endpoints:
        latencies = [float(round(rng.lognormvariate(7.0, 0.5))) for _ in range(per_endpoint)]
        counts: dict[float, int] = {}
        for v in latencies:
            counts[v] = counts.get(v, 0) + 1
        values = sorted(counts)[:150]
        data.append(
            {
                "MetricName": "ModelLatency",
                "Dimensions": dims(ep),
                "Timestamp": second,
                "Values": values,
                "Counts": [float(counts[v]) for v in values],
                "StorageResolution": 1,
            }
        )
        errors = sum(rng.random() < 0.01 for _ in range(per_endpoint))
        data.append(
            {
                "MetricName": "Invocation5XXErrors",
                "Dimensions": dims(ep),
                "Timestamp": second,
                "Values": [0.0, 1.0],
                "Counts": [float(per_endpoint - errors), float(errors)],
                "StorageResolution": 1,
            }
        )
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)


def cost(url: str, n_alarms: int, n_endpoints: int, seconds: int, rate: int) -> None:
    cw = boto3.client("cloudwatch", endpoint_url=url, region_name="us-east-1")
    endpoints = [f"bench-ep-{i}" for i in range(n_endpoints)]
    for i in range(n_alarms):
        ep = endpoints[i % n_endpoints]
        stat = {"Statistic": "Average"} if i % 2 == 0 else {"ExtendedStatistic": "p99"}
        metric, threshold = ("Invocation5XXErrors", 0.05) if i % 4 == 0 else ("ModelLatency", 100_000.0)
        cw.put_metric_alarm(
            AlarmName=f"bench-{i}",
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=dims(ep),
            Period=10,
            EvaluationPeriods=2,
            Threshold=threshold,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
            **stat,
        )
    rng = random.Random(1)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds)
    t = time.perf_counter()
    for s in range(seconds):
        publish_second(cw, endpoints, start + timedelta(seconds=s), rate, rng)
    publish_s = time.perf_counter() - t
    from moto.cloudwatch.models import cloudwatch_backends

    stored = len(cloudwatch_backends["123456789012"]["us-east-1"].metric_data)
    evaluator = AlarmEvaluator(aws_endpoint_url=url)
    now = (start + timedelta(seconds=seconds)).timestamp()
    t = time.perf_counter()
    evaluator.evaluate_once(now)
    first = time.perf_counter() - t
    steady = []
    for k in range(1, 11):
        publish_second(cw, endpoints, start + timedelta(seconds=seconds + k - 1), rate, rng)
        t = time.perf_counter()
        evaluator.evaluate_once(now + k)
        steady.append(time.perf_counter() - t)
    print(
        f"cost: {n_alarms} alarms, {n_endpoints} endpoints, {seconds} s of history at {rate} req/s "
        f"-> {stored:,} stored datapoints (published in {publish_s:.1f} s)"
    )
    print(f"  first evaluate_once (indexes everything): {first * 1000:.0f} ms")
    print(
        f"  steady evaluate_once: median {statistics.median(steady) * 1000:.1f} ms, "
        f"max {max(steady) * 1000:.1f} ms = {statistics.median(steady) * 1000 / n_alarms:.2f} ms per alarm"
    )
    cw.delete_alarms(AlarmNames=[f"bench-{i}" for i in range(n_alarms)])


def detection(url: str, trials: int, partial: bool) -> None:
    cw = boto3.client("cloudwatch", endpoint_url=url, region_name="us-east-1")
    delays = []
    with AlarmEvaluator(aws_endpoint_url=url, interval=1.0, evaluate_partial_period=partial):
        for i in range(trials):
            name, ep = f"detect-{partial}-{i}", f"detect-ep-{partial}-{i}"
            cw.put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/SageMaker",
                MetricName="Invocation5XXErrors",
                Dimensions=dims(ep),
                Statistic="Average",
                Period=10,
                EvaluationPeriods=1,
                Threshold=0.05,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
                TreatMissingData="notBreaching",
            )
            time.sleep(random.Random(i).uniform(0, 10))  # a random phase within the 10-s period
            t = time.perf_counter()
            cw.put_metric_data(
                Namespace="AWS/SageMaker",
                MetricData=[
                    {
                        "MetricName": "Invocation5XXErrors",
                        "Dimensions": dims(ep),
                        "Timestamp": datetime.now(UTC),
                        "Value": 1.0,
                        "StorageResolution": 1,
                    }
                ],
            )
            while cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] != "ALARM":
                time.sleep(0.05)
            delays.append(time.perf_counter() - t)
            cw.delete_alarms(AlarmNames=[name])
    label = "open period evaluated" if partial else "complete periods only"
    print(
        f"detection ({label}, Period 10, interval 1 s, {trials} trials): median {statistics.median(delays):.2f} s, "
        f"max {max(delays):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alarms", type=int, default=40)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = "http://{}:{}".format(*server.get_host_and_port())
    try:
        cost(url, args.alarms, args.endpoints, args.seconds, args.rate)
        detection(url, args.trials, partial=True)
        detection(url, args.trials, partial=False)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
