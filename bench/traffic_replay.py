"""Traffic replayer throughput against the local SageMaker emulator (in-process moto + emulator, tiny xgboost).

For each target rate: a replay of D seconds, then the achieved rate, errors and client-side latency percentiles.

    .venv/bin/python bench/traffic_replay.py [--rates 50 100 200 400] [--duration 5]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
    os.environ.setdefault(key, value)

import boto3  # noqa: E402
import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402
from botocore.config import Config  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from guardrail.traffic import HeldOut, TrafficConfig, TrafficReplayer  # noqa: E402
from local.sagemaker.server import EmulatorServer  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def artifact() -> tuple[bytes, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    y = (x[:, 0] + rng.normal(scale=0.5, size=500) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(x, label=y), 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        raw = bytes(booster.save_raw("ubj"))
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    holdout = Path(tempfile.mkdtemp()) / "holdout.csv"
    with holdout.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["y", *(f"x{i}" for i in range(6))])
        writer.writerows([int(label), *(f"{v:.5f}" for v in row)] for row, label in zip(x, y, strict=True))
    return buf.getvalue(), holdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    url = "http://{}:{}".format(*moto.get_host_and_port())
    model, holdout = artifact()
    s3 = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
    )
    s3.create_bucket(Bucket="bench")
    s3.put_object(Bucket="bench", Key="m/model.tar.gz", Body=model)
    emulator = EmulatorServer(aws_endpoint_url=url, provisioning_delay=0.1).start()
    try:
        sm = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1")
        sm.create_model(
            ModelName="bench",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bench/m/model.tar.gz"},
        )
        sm.create_endpoint_config(
            EndpointConfigName="bench",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "bench",
                    "InstanceType": "ml.m5.xlarge",
                    "InitialInstanceCount": 2,
                }
            ],
        )
        sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bench", WaiterConfig={"Delay": 1})
        data = HeldOut.from_csv(holdout)
        print(
            f"{'target/s':>9} {'achieved/s':>10} {'sent':>6} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} workers"
        )
        for rate in args.rates:
            config = TrafficConfig(endpoint_name="bench", rate=rate, duration=args.duration)
            s = TrafficReplayer(config, data, endpoint_url=emulator.url, region="us-east-1").run().summary
            lat = s.latency_ms
            print(
                f"{rate:9.0f} {s.achieved_rate:10.1f} {s.sent:6d} {s.errors:6d} {lat.p50:7.2f} {lat.p99:7.2f} "
                f"{config.workers}"
            )
    finally:
        emulator.stop()
        moto.stop()


if __name__ == "__main__":
    main()
