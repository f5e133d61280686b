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


def _chain_tree(depth: int, tree_id: int, like: dict[str, Any]) -> dict[str, Any]:
    """A tree in xgboost's JSON format that every row walks to the bottom (x0 < 3e38 goes left) to a 0 leaf."""
    n = 2 * depth + 1
    left, right, parents, cond = [-1] * n, [-1] * n, [0] * n, [0.0] * n
    for i in range(depth):
        node = 2 * i
        left[node] = 2 * i + 2 if i < depth - 1 else 2 * depth
        right[node] = 2 * i + 1
        cond[node] = 3.0e38
        parents[2 * i + 1] = parents[left[node]] = node
    parents[0] = like["parents"][0]
    return {**like, "id": tree_id, "base_weights": [0.0] * n, "default_left": [1] * n, "left_children": left,
            "right_children": right, "parents": parents, "split_conditions": cond, "split_indices": [0] * n,
            "split_type": [0] * n, "loss_changes": [0.0] * n, "sum_hessian": [1.0] * n,
            "tree_param": {**like["tree_param"], "num_nodes": str(n)}}


def _slowed(booster: xgb.Booster, trees: int = 150, depth: int = 1000) -> xgb.Booster:
    """The same predictions, but every row also walks `trees` chains of `depth` nodes: a valid, slow model."""
    model = json.loads(booster.save_raw("json"))
    gb = model["learner"]["gradient_booster"]["model"]
    n = len(gb["trees"])
    gb["trees"] += [_chain_tree(depth, n + i, gb["trees"][0]) for i in range(trees)]
    gb["tree_info"] += [0] * trees
    gb["gbtree_model_param"]["num_trees"] = str(n + trees)
    gb["iteration_indptr"][-1] = n + trees
    slow = xgb.Booster()
    slow.load_model(bytearray(json.dumps(model).encode()))
    return slow


@pytest.fixture(scope="session")
def boosters() -> dict[str, xgb.Booster]:
    v1 = _train(20, 3, 1)
    return {"v1": v1, "v2": _train(20, 3, 2), "slow": _slowed(v1)}


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


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3(moto_url: str, artifacts: dict[str, bytes]) -> Any:
    client = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=BUCKET)
    for name, data in artifacts.items():
        client.put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=data)
    return client


@pytest.fixture(scope="module")
def cloudwatch(moto_url: str) -> Any:
    return boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture(scope="module")
def emulator(moto_url: str, s3: Any) -> Iterator[EmulatorServer]:
    server = EmulatorServer(aws_endpoint_url=moto_url, provisioning_delay=0.2, alarm_poll_interval=0.2,
                            flush_interval=0.5).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sm(emulator: EmulatorServer) -> Any:
    return boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def smr(emulator: EmulatorServer) -> Any:
    return boto3.client("sagemaker-runtime", endpoint_url=emulator.url, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=20))


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Unique resource names per test (the emulator is shared by the session)."""
    base = request.node.name.replace("_", "-").replace("[", "-").replace("]", "")[:30].strip("-")
    stamp = str(int(time.time() * 1000) % 10_000_000)
    return lambda kind: f"{base}-{kind}-{stamp}"[:63].strip("-")


