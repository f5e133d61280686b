"""Prepare a `Dataset` the way the SageMaker built-in XGBoost algorithm expects it.

CSV, label first, no header, numbers only: categorical columns are one-hot encoded (categories fixed from the
whole data set, in sorted order), missing numbers are imputed with the training median (the container's CSV
reader does not accept empty fields). A stratified, seeded split gives train / validation / test and a
held-out set for traffic replay and shadow-test quality (`holdout.csv`: header, label first).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from training.data import DataError, Dataset

SPLITS = ("train", "validation", "test", "holdout")
FRACTIONS = {"validation": 0.15, "test": 0.15, "holdout": 0.10}  # train gets the rest (60 %)


@dataclass(frozen=True)
class Split:
    X: np.ndarray  # encoded, float64, endpoint column order
    y: np.ndarray  # 0/1
    raw: pd.DataFrame  # the raw rows (features, facets, label) for baselines and bias
    csv: bytes  # label first, no header (holdout: with header)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.csv).hexdigest()


@dataclass(frozen=True)
class Prepared:
    dataset: Dataset
    seed: int
    features: list[str]  # encoded column names, the endpoint's CSV order
    one_hot: dict[str, dict[str, str]]  # raw categorical -> {category: encoded column}
    medians: dict[str, float]  # imputation values for numeric columns (from train)
    splits: dict[str, Split]

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]

    def write(self, directory: Path | str) -> dict[str, Path]:
        """Write train/validation/test.csv (SageMaker format) and holdout.csv (header + label) into directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, split in self.splits.items():
            paths[name] = directory / f"{name}.csv"
            paths[name].write_bytes(split.csv)
        return paths


def _column_name(col: str, category: str) -> str:
    return f"{col}={category}"


def _to_csv(y: np.ndarray, X: np.ndarray, header: list[str] | None) -> bytes:
    frame = pd.DataFrame(X, columns=header[1:] if header else None)
    frame.insert(0, header[0] if header else "label", y)
    return frame.to_csv(index=False, header=header is not None, float_format="%.10g", lineterminator="\n").encode()


def encode(frame: pd.DataFrame, numeric: list[str], one_hot: dict[str, dict[str, str]],
           medians: dict[str, float]) -> np.ndarray:
    """Raw rows -> the endpoint's numeric matrix (numeric columns first, then one-hot groups)."""
    parts = [frame[numeric].astype(np.float64).fillna(medians).to_numpy()]
    for col, mapping in one_hot.items():
        values = frame[col].to_numpy()
        parts.append(np.stack([(values == cat).astype(np.float64) for cat in mapping], axis=1))
    return np.concatenate(parts, axis=1)


def prepare(dataset: Dataset, *, seed: int = 42) -> Prepared:
    """Encode and split deterministically for `seed` (stratified on the label)."""
    frame = dataset.frame.reset_index(drop=True)
    y = dataset.y
    counts = np.bincount(y, minlength=2)
    if counts.min() < 20:
        raise DataError(f"{dataset.name}: need at least 20 rows of each class to split, have {counts.tolist()}")
    index = np.arange(len(frame))
    rest, holdout = train_test_split(index, test_size=FRACTIONS["holdout"], stratify=y, random_state=seed)
    rest, test = train_test_split(rest, test_size=FRACTIONS["test"] / (1 - FRACTIONS["holdout"]),
                                  stratify=y[rest], random_state=seed)
    share = FRACTIONS["validation"] / (1 - FRACTIONS["holdout"] - FRACTIONS["test"])
    train, validation = train_test_split(rest, test_size=share, stratify=y[rest], random_state=seed)
    parts = {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test),
             "holdout": np.sort(holdout)}

    train_raw = frame.iloc[parts["train"]]
    medians = {c: float(train_raw[c].median()) if train_raw[c].notna().any() else 0.0 for c in dataset.numeric}
    one_hot = {c: {cat: _column_name(c, cat) for cat in sorted(frame[c].unique())} for c in dataset.categorical}
    features = [*dataset.numeric, *(name for mapping in one_hot.values() for name in mapping.values())]

    splits = {}
    for name, idx in parts.items():
        raw = frame.iloc[idx].reset_index(drop=True)
        X = encode(raw, dataset.numeric, one_hot, medians)
        header = [dataset.label, *features] if name == "holdout" else None
        splits[name] = Split(X=X, y=y[idx], raw=raw, csv=_to_csv(y[idx], X, header))
    return Prepared(dataset=dataset, seed=seed, features=features, one_hot=one_hot, medians=medians, splits=splits)
