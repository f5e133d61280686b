"""Per-call cost of strict IAM on the local cloud's moto server (in-process moto, HTTP over loopback).

For each call shape the flow uses (DynamoDB GetItem, S3 GetObject, CloudWatch PutMetricData with the
namespace condition, SNS Publish to a KMS-encrypted topic, which also checks kms:GenerateDataKey/Decrypt):
1. moto as shipped (no enforcement), admin keys;
2. strict IAM installed, admin keys (the operator/test harness path: one key lookup);
3. strict IAM installed, an assumed-role session whose policy allows the call (the Lambda worker path);
plus `local.iam.authorize` alone (the evaluator the SageMaker emulator calls), in microseconds.

    .venv/bin/python bench/iam_overhead.py [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
    os.environ.setdefault(key, value)

import logging  # noqa: E402

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

import local.iam as iam  # noqa: E402
from local.iam import enforce  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"


def clients(url: str, creds: dict[str, str]) -> dict[str, object]:
    kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"], aws_session_token=creds.get("AWS_SESSION_TOKEN"))
    return {s: boto3.client(s, **kw) for s in ("dynamodb", "s3", "cloudwatch", "sns")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    url = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    admin_creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
    admin = clients(url, admin_creds)
    admin["dynamodb"].create_table(TableName="locks", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    admin["dynamodb"].put_item(TableName="locks", Item={"pk": {"S": "k"}})
    admin["s3"].create_bucket(Bucket="models")
    admin["s3"].put_object(Bucket="models", Key="models/m/1/evaluation.json", Body=b"{}")
    key = boto3.client("kms", endpoint_url=url, region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    topic = admin["sns"].create_topic(Name="outcomes", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    iam_client = boto3.client("iam", endpoint_url=url, region_name=REGION)
    role = iam_client.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    statements = [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/locks"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetObjectVersion"], "Resource": ["arn:aws:s3:::models", "arn:aws:s3:::models/*"]},
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": "Guardrail/CanaryVerdict"}}},
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": key},
    ]
    iam_client.put_role_policy(RoleName="bench", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    creds = iam.credentials_for_role(role, "bench")

    def shapes(c):
        return {
            "dynamodb GetItem": lambda: c["dynamodb"].get_item(TableName="locks", Key={"pk": {"S": "k"}}),
            "s3 GetObject": lambda: c["s3"].get_object(Bucket="models", Key="models/m/1/evaluation.json")["Body"].read(),
            "cloudwatch PutMetricData": lambda: c["cloudwatch"].put_metric_data(Namespace="Guardrail/CanaryVerdict", MetricData=[{"MetricName": "Reject", "Value": 0}]),
            "sns Publish (SSE topic)": lambda: c["sns"].publish(TopicArn=topic, Message="m"),
        }

    # Interleaved (mode by mode within each round) so that load from other processes hits all modes alike.
    per_mode = {"off": shapes(clients(url, admin_creds)), "admin": shapes(clients(url, admin_creds)), "role": shapes(clients(url, creds))}
    samples: dict[str, dict[str, list[float]]] = {}
    for round_ in range(args.calls + 1):
        for mode, calls in per_mode.items():
            enforce.uninstall() if mode == "off" else enforce.install()
            for name, fn in calls.items():
                t = time.perf_counter()
                fn()
                if round_:  # round 0 warms the clients
                    samples.setdefault(name, {}).setdefault(mode, []).append((time.perf_counter() - t) * 1000)
    rows = {name: {mode: statistics.median(v) for mode, v in by_mode.items()} for name, by_mode in samples.items()}
    principal = iam.principal_for_access_key(creds["AWS_ACCESS_KEY_ID"])
    n = args.calls * 10
    t = time.perf_counter()
    for _ in range(n):
        iam.authorize(principal, "cloudwatch:PutMetricData", ["*"], {"cloudwatch:namespace": "Guardrail/CanaryVerdict"})
    evaluator_us = (time.perf_counter() - t) / n * 1e6
    enforce.uninstall()
    moto.stop()
    print(f"median ms per call over {args.calls} calls (HTTP to in-process moto, same process as the client)")
    print(f"{'call':28} {'no IAM':>8} {'strict, admin':>14} {'strict, role':>13} {'role overhead':>14}")
    for name, r in rows.items():
        print(f"{name:28} {r['off']:8.2f} {r['admin']:14.2f} {r['role']:13.2f} {r['role'] - r['off']:+14.2f}")
    print(f"local.iam.authorize alone (5 statements, 1 condition): {evaluator_us:.1f} us per call")


if __name__ == "__main__":
    main()
