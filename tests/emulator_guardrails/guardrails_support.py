"""Helpers for the guardrail integration tests: tiny real xgboost models and their artifacts."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

BUCKET = "guardrail-models"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
N_FEATURES = 6
SLOW_TREES, SLOW_DEPTH = 400, 1000  # ~800k nodes: beyond the CPU caches, ~15 ms a row


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return x, y


def train(seed: int, rounds: int = 20, depth: int = 3) -> xgb.Booster:
    x, y = synthetic(400, seed)
    params = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.3, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=rounds)


def _chain_tree(tree_id: int, depth: int) -> dict[str, Any]:
    """A tree that every row walks to the bottom: `depth` splits that always go right, all leaves 0."""
    n = 2 * depth + 1
    left, right, parents = [-1] * n, [-1] * n, [2**31 - 1] * n
    conditions = [0.0] * n
    for k in range(depth):
        node = 2 * k
        left[node], right[node] = node + 1, node + 2
        parents[node + 1] = parents[node + 2] = node
        conditions[node] = -3.0e38  # `x < condition` never holds: always the right child
    return {
        "id": tree_id,
        "left_children": left,
        "right_children": right,
        "parents": parents,
        "split_conditions": conditions,
        "split_indices": [k % N_FEATURES for k in range(n)],
        "split_type": [0] * n,
        "default_left": [0] * n,
        "base_weights": [0.0] * n,
        "loss_changes": [0.0] * n,
        "sum_hessian": [1.0] * n,
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(N_FEATURES),
            "num_nodes": str(n),
            "size_leaf_vector": "1",
        },
    }


def slowed(booster: xgb.Booster, trees: int = SLOW_TREES, depth: int = SLOW_DEPTH) -> xgb.Booster:
    """The same predictions, but each row also walks `trees` chains of `depth` splits adding 0: a valid,
    slow model (~15 ms per row here). Training cannot make trees this deep from a small data set, and
    long chains cost far more per node than a forest of small trees (cache misses), so the model stays small."""
    model = json.loads(booster.save_raw("json"))
    gb = model["learner"]["gradient_booster"]["model"]
    n = len(gb["trees"])
    gb["trees"] += [_chain_tree(n + i, depth) for i in range(trees)]
    gb["tree_info"] += [0] * trees
    gb["gbtree_model_param"]["num_trees"] = str(n + trees)
    gb["iteration_indptr"][-1] = n + trees
    slow = xgb.Booster()
    slow.load_model(bytearray(json.dumps(model).encode()))
    return slow


def tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_holdout(path: Path, n: int = 200, seed: int = 99) -> Path:
    """A held-out CSV as training writes it: header, label first."""
    x, y = synthetic(n, seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["y", *(f"x{i}" for i in range(N_FEATURES))])
        for features, label in zip(x, y, strict=True):
            writer.writerow([int(label), *(f"{v:.6f}" for v in features)])
    return path


def model_url(artifact: str) -> str:
    return f"s3://{BUCKET}/models/{artifact}/model.tar.gz"


def wait_status(
    sm: Any, endpoint: str, statuses: tuple[str, ...] = ("InService", "Failed"), timeout: float = 60
):
    deadline = time.monotonic() + timeout
    while True:
        desc = sm.describe_endpoint(EndpointName=endpoint)
        if desc["EndpointStatus"] in statuses or time.monotonic() > deadline:
            return desc
        time.sleep(0.1)
