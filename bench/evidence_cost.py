"""Cost of the statistical guardrails inside the Lambdas: the drift / data-quality check and the shadow test's
capture evidence (pairing + ground truth + data quality + drift + live bias) over N captured requests.

In-process moto S3/SageMaker/CloudWatch/SNS, a real evaluation.json and held-out rows from training:

    .venv/bin/python bench/evidence_cost.py --models .cache/e2e-models --requests 5000 20000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})

BUCKET, ENDPOINT = "bench-models", "bench-endpoint"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path(".cache/e2e-models"))
    parser.add_argument("--requests", type=int, nargs="+", default=[5000, 20000])
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from functions.capture import capture_line, ground_truth_line
    from functions.config import settings_from
    from functions.models import CheckDataInput, ShadowState
    from functions.stats.verdict import LatencySummary, VariantSample
    from functions.steps.data_checks import check_data
    from functions.steps.shadow_analysis import _capture_evidence, policy_for
    from guardrail.demo import holdout

    data = holdout(args.models)
    rows = [",".join(r) for r in data.rows]
    labels = [int(float(v)) for v in data.labels]
    env = {"TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench", "DATA_CAPTURE_URI": f"s3://{BUCKET}/capture",
           "ENDPOINT_NAME": ENDPOINT, "DATA_CHECK_WINDOW_SECONDS": "86400", "GROUND_TRUTH_URI": f"s3://{BUCKET}/gt"}
    settings = settings_from(env)
    print(f"{'requests':>9} {'check_data s':>13} {'req/s':>8} {'capture evidence s':>19} {'req/s':>8} {'max RSS MB':>11}")
    for n in args.requests:
        with mock_aws():
            s3, sm = boto3.client("s3"), boto3.client("sagemaker")
            boto3.client("sns").create_topic(Name="bench")
            s3.create_bucket(Bucket=BUCKET)
            s3.put_object(Bucket=BUCKET, Key="models/m/1/evaluation.json",
                          Body=(args.models / "xgb-best" / "evaluation.json").read_bytes())
            sm.create_model(ModelName="m-1", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                            PrimaryContainer={"Image": "i", "ModelDataUrl": f"s3://{BUCKET}/models/m/1/model.tar.gz"})
            sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
                {"VariantName": "prod", "ModelName": "m-1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
            sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c")
            now = datetime.now(UTC)
            at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            rng = random.Random(0)
            for variant in ("prod", "shadow"):
                lines = []
                for i in range(n):
                    j = i % len(rows)
                    score = min(max(0.1 + 0.5 * labels[j] + rng.gauss(0, 0.2), 0.001), 0.999)
                    lines.append(capture_line(f"{variant}{i}", rows[j], f"{score:.4f}", inference_id=f"r{i}",
                                              inference_time=at))
                for k in range(0, n, 1000):  # one file per ~second of traffic at 1000 rps
                    s3.put_object(Bucket=BUCKET, Key=f"capture/{ENDPOINT}/{variant}/{now:%Y/%m/%d/%H}/{k}.jsonl",
                                  Body="\n".join(lines[k : k + 1000]).encode())
            truth = [ground_truth_line(f"r{i}", labels[i % len(rows)]) for i in range(n)]
            s3.put_object(Bucket=BUCKET, Key=f"gt/{ENDPOINT}/{now:%Y/%m/%d/%H}/gt.jsonl", Body="\n".join(truth))

            t = time.perf_counter()
            result = check_data(CheckDataInput(), settings, now=now + timedelta(seconds=1))
            t_check = time.perf_counter() - t
            assert result.rows == n, result.explanation

            shadow = ShadowState(
                status="RUNNING", experiment_name="e", endpoint_name=ENDPOINT, production_variant="prod",
                shadow_variant="shadow", shadow_model="m-2", sampling_percent=100, method="msprt",
                policy=policy_for(settings).model_dump(mode="json"), capture_uri=settings.data_capture_uri,
                ground_truth_uri=settings.ground_truth_uri, evaluation_uri=f"s3://{BUCKET}/models/m/1/evaluation.json",
            )
            lat = LatencySummary.from_values([1000.0 + i % 7 for i in range(60)])
            sample = VariantSample(name="x", requests=n, errors=0, latency=lat)
            t = time.perf_counter()
            found = _capture_evidence(shadow, now - timedelta(hours=1), now + timedelta(seconds=1), settings,
                                      policy_for(settings), sample, sample.model_copy(update={"name": "y"}))
            t_evidence = time.perf_counter() - t
            assert found is not None and found[0].paired is not None and found[0].paired.labeled == n
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>9} {t_check:>13.2f} {n / t_check:>8.0f} {t_evidence:>19.2f} {n / t_evidence:>8.0f} {rss:>11.0f}")
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
