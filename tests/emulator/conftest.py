"""Fixtures: an in-process moto server (S3, CloudWatch), the emulator, and tiny real model artifacts."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import numpy as np
import pytest
import xgboost as xgb
from botocore.config import Config
from emulator_helpers import BUCKET, N_FEATURES
from moto.server import ThreadedMotoServer

from local.sagemaker.server import EmulatorServer


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _train(n_trees: int, depth: int, seed: int) -> xgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    return xgb.train({"objective": "binary:logistic", "max_depth": depth, "eta": 0.3},
                     xgb.DMatrix(x, label=y), num_boost_round=n_trees)


def _booster_bytes(booster: xgb.Booster) -> bytes:
    return bytes(booster.save_raw("ubj"))


def _slowed(booster: xgb.Booster, extra_trees: int) -> xgb.Booster:
    """The same predictions, but every row walks `extra_trees` more deep trees (all leaves 0): slow and valid."""
    rng = np.random.default_rng(9)
    deep = xgb.train({"objective": "binary:logistic", "max_depth": 8, "min_child_weight": 0, "lambda": 0},
                     xgb.DMatrix(rng.normal(size=(300, N_FEATURES)), label=rng.integers(0, 2, 300)), 1)
    first = json.loads(deep.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"][0]
    model = json.loads(booster.save_raw("json"))
    gb = model["learner"]["gradient_booster"]["model"]
    n = len(gb["trees"])
    leaf = [c == -1 for c in first["left_children"]]
    zero = {**first, "base_weights": [0.0] * len(leaf),
            "split_conditions": [0.0 if is_leaf else c for c, is_leaf in zip(first["split_conditions"], leaf, strict=True)]}
    gb["trees"] += [{**zero, "id": n + i} for i in range(extra_trees)]
    gb["tree_info"] += [0] * extra_trees
    gb["gbtree_model_param"]["num_trees"] = str(n + extra_trees)
    gb["iteration_indptr"][-1] = n + extra_trees
    slow = xgb.Booster()
    slow.load_model(bytearray(json.dumps(model).encode()))
    return slow


@pytest.fixture(scope="session")
def boosters() -> dict[str, xgb.Booster]:
    v1 = _train(20, 3, 1)
    return {"v1": v1, "v2": _train(20, 3, 2), "slow": _slowed(v1, 4_000)}


@pytest.fixture(scope="session")
def artifacts(boosters: dict[str, xgb.Booster]) -> dict[str, bytes]:
    from sklearn.linear_model import LogisticRegression

    sk = LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, N_FEATURES)), [0, 1] * 10)
    return {
        "v1": _tarball({"xgboost-model": _booster_bytes(boosters["v1"])}),
        "v2": _tarball({"xgboost-model": pickle.dumps(boosters["v2"])}),  # pickled, as older containers saved
        "slow": _tarball({"xgboost-model": _booster_bytes(boosters["slow"])}),
        "incompatible": _tarball({"xgboost-model": pickle.dumps(sk)}),  # an sklearn model, not xgboost
        "textfile": _tarball({"xgboost-model": b"this is not a model\n"}),
        "not-a-tarball": b"plain bytes, not a tar.gz",
    }


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3(moto_url: str, artifacts: dict[str, bytes]) -> Any:
    client = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=BUCKET)
    for name, data in artifacts.items():
        client.put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=data)
    return client


@pytest.fixture(scope="session")
def cloudwatch(moto_url: str) -> Any:
    return boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture(scope="session")
def emulator(moto_url: str, s3: Any) -> Iterator[EmulatorServer]:
    server = EmulatorServer(aws_endpoint_url=moto_url, provisioning_delay=0.2, alarm_poll_interval=0.2,
                            flush_interval=0.5).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sm(emulator: EmulatorServer) -> Any:
    return boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="session")
def smr(emulator: EmulatorServer) -> Any:
    return boto3.client("sagemaker-runtime", endpoint_url=emulator.url, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=20))


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Unique resource names per test (the emulator is shared by the session)."""
    base = request.node.name.replace("_", "-").replace("[", "-").replace("]", "")[:30].strip("-")
    stamp = str(int(time.time() * 1000) % 10_000_000)
    return lambda kind: f"{base}-{kind}-{stamp}"[:63].strip("-")


