"""SageMaker emulator throughput and added latency for single-row CSV InvokeEndpoint, vs xgboost directly.

The emulator runs in this process beside an in-process moto server (as in the local cloud, metrics and all);
the load comes from separate client processes on keep-alive HTTP/1.1 connections (http.client), so the client
does not share the server's GIL. boto3 is used for correctness (the answer equals xgboost's own prediction).

    .venv/bin/python bench/emulator_throughput.py [--seconds 10] [--concurrency 8] [--clients 2]
"""

from __future__ import annotations

import argparse
import http.client
import io
import multiprocessing as mp
import os
import sys
import tarfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

N_FEATURES = 50  # about what the one-hot encoded Bank Marketing data has
N_ROWS = 2000


def make_rows(n: int = N_ROWS) -> list[str]:
    x = np.random.default_rng(1).normal(size=(n, N_FEATURES))
    return [",".join(f"{v:.5f}" for v in r) for r in x]


def client(url: str, endpoint: str, threads: int, seconds: float, out: mp.Queue) -> None:
    """One load process: `threads` keep-alive connections; returns (latencies in s, errors)."""
    host, port = url.removeprefix("http://").split(":")
    rows = [r.encode() for r in make_rows()]
    path = f"/endpoints/{endpoint}/invocations"
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads)

    def run(k: int) -> None:
        conn = http.client.HTTPConnection(host, int(port))
        start.wait()
        end = time.perf_counter() + seconds
        i = k
        while (t0 := time.perf_counter()) < end:
            conn.request("POST", path, body=rows[i % len(rows)], headers={"Content-Type": "text/csv"})
            resp = conn.getresponse()
            resp.read()
            latencies[k].append(time.perf_counter() - t0)
            errors[k] += resp.status != 200
            i += threads

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(([x for lat in latencies for x in lat], sum(errors)))


def load(url: str, endpoint: str, processes: int, threads: int, seconds: float) -> tuple[np.ndarray, int, float]:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=client, args=(url, endpoint, threads, seconds, q)) for _ in range(processes)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    lat = np.array([x for r in results for x in r[0]])
    return lat, sum(r[1] for r in results), elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=8, help="total keep-alive connections")
    ap.add_argument("--clients", type=int, default=1, help="client processes")
    ap.add_argument("--trees", type=int, default=100)
    args = ap.parse_args()
    load_before = os.getloadavg()[0]  # other work on the machine skews every number

    import logging

    import boto3
    import xgboost as xgb
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    from local.sagemaker.server import EmulatorServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=5000) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1}, xgb.DMatrix(x, label=y),
                        args.trees)
    raw = bytes(booster.save_raw("ubj"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_url = "http://{}:{}".format(*moto.get_host_and_port())
    emu = EmulatorServer(aws_endpoint_url=moto_url, provisioning_delay=0).start()
    try:
        kw = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        s3 = boto3.client("s3", endpoint_url=moto_url, config=Config(s3={"addressing_style": "path"}), **kw)
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="m/model.tar.gz", Body=buf.getvalue())
        sm = boto3.client("sagemaker", endpoint_url=emu.url, **kw)
        smr = boto3.client("sagemaker-runtime", endpoint_url=emu.url, **kw)
        sm.create_model(ModelName="bench", PrimaryContainer={"Image": "xgboost", "ModelDataUrl": "s3://bench/m/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "bench", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
        while sm.describe_endpoint(EndpointName="bench")["EndpointStatus"] != "InService":
            time.sleep(0.05)

        rows = make_rows()
        parsed = [np.array([[float(v) for v in r.split(",")]], dtype=np.float32) for r in rows]
        booster.set_param({"nthread": 1})
        answer = float(smr.invoke_endpoint(EndpointName="bench", ContentType="text/csv", Body=rows[0])["Body"].read())
        assert abs(answer - float(booster.inplace_predict(parsed[0])[0])) < 1e-6, "emulator answer differs"

        # floor: xgboost directly on the same rows, one thread
        for p in parsed[:200]:
            booster.inplace_predict(p)
        direct = []
        for p in parsed:
            t0 = time.perf_counter()
            booster.inplace_predict(p)
            direct.append(time.perf_counter() - t0)
        direct_arr = np.array(direct)

        seq, seq_err, _ = load(emu.url, "bench", 1, 1, min(5.0, args.seconds))
        lat, err, _ = load(emu.url, "bench", args.clients, max(1, args.concurrency // args.clients), args.seconds)
    finally:
        emu.stop()
        moto.stop()

    us = 1e6
    d50, d99 = np.percentile(direct_arr, [50, 99]) * us
    s50, s99 = np.percentile(seq, [50, 99]) * us
    c50, c99 = np.percentile(lat, [50, 99]) * us
    print(f"model: {args.trees} trees depth 6, {N_FEATURES} features; {os.cpu_count()} cpus; "
          f"load average before the run {load_before:.1f}")
    print(f"xgboost direct (floor): {1 / direct_arr.mean():,.0f} predictions/s one thread; "
          f"p50 {d50:,.0f} us, p99 {d99:,.0f} us")
    # added latency = emulator round trip minus the floor's median: conservative, as the whole tail (including
    # scheduler noise that the floor's own p99 shows) is charged to the emulator
    print(f"emulator, 1 connection: {len(seq) / min(5.0, args.seconds):,.0f} req/s; round trip p50 {s50:,.0f} us, "
          f"p99 {s99:,.0f} us; added latency p50 {s50 - d50:,.0f} us, p99 {s99 - d50:,.0f} us; errors {seq_err}")
    print(f"emulator, {args.concurrency} connections / {args.clients} client process(es), {args.seconds:g} s: "
          f"{len(lat) / args.seconds:,.0f} req/s sustained; p50 {c50:,.0f} us, p99 {c99:,.0f} us; errors {err}")


if __name__ == "__main__":
    main()
