"""Preparation in the built-in XGBoost algorithm's CSV format, deterministic for a seed."""

import io

import numpy as np
import pandas as pd
import pytest

from training.data import synthetic_promotion
from training.prepare import prepare


@pytest.fixture(scope="module")
def dataset():
    return synthetic_promotion(rows=3_000, seed=7, gender_bias=0.5)


def test_same_seed_same_bytes_other_seed_other_split(dataset):
    a, b, c = prepare(dataset, seed=1), prepare(dataset, seed=1), prepare(dataset, seed=2)
    assert {n: s.sha256 for n, s in a.splits.items()} == {n: s.sha256 for n, s in b.splits.items()}
    assert a["train"].sha256 != c["train"].sha256


def test_splits_are_disjoint_stratified_and_complete(dataset):
    p = prepare(dataset, seed=1)
    sizes = {n: len(s.y) for n, s in p.splits.items()}
    assert sum(sizes.values()) == len(dataset.frame)
    assert sizes["train"] > sizes["validation"] > sizes["holdout"]
    rate = dataset.y.mean()
    for split in p.splits.values():
        assert abs(split.y.mean() - rate) < 0.02


def test_sagemaker_csv_is_label_first_without_header(dataset, tmp_path):
    p = prepare(dataset, seed=1)
    paths = p.write(tmp_path)
    train = np.loadtxt(paths["train"], delimiter=",")
    assert train.shape == (len(p["train"].y), len(p.features) + 1)
    assert set(np.unique(train[:, 0])) == {0.0, 1.0}
    np.testing.assert_allclose(train[:, 1:], p["train"].X, rtol=1e-9)
    assert not np.isnan(train).any()  # the container's CSV reader takes no empty fields


def test_holdout_has_header_and_label_column(dataset):
    p = prepare(dataset, seed=1)
    holdout = pd.read_csv(io.BytesIO(p["holdout"].csv))
    assert list(holdout.columns) == [dataset.label, *p.features]
    assert holdout[dataset.label].tolist() == p["holdout"].y.tolist()


def test_one_hot_columns_cover_every_category(dataset):
    p = prepare(dataset, seed=1)
    for col, mapping in p.one_hot.items():
        idx = [p.features.index(c) for c in mapping.values()]
        assert np.all(p["train"].X[:, idx].sum(axis=1) == 1), col
