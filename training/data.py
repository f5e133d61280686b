"""Load and validate the raw data sets: UCI Bank Marketing, employee promotion (real CSV or synthetic).

Every loader checks the file, the columns and the label values and raises `DataError` with a clear message
before any training starts. The result is a `Dataset`: raw feature columns plus a 0/1 label column.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
BANK_CSV = REPO_ROOT / "data" / "bank-marketing" / "bank-additional-full.csv.gz"

BANK_NUMERIC = ["age", "duration", "campaign", "pdays", "previous", "emp.var.rate", "cons.price.idx",
                "cons.conf.idx", "euribor3m", "nr.employed"]
BANK_CATEGORICAL = ["job", "marital", "education", "default", "housing", "loan", "contact", "month",
                    "day_of_week", "poutcome"]
BANK_LABEL = "y"

# Kaggle "HR Analytics" schema (the canonical names used here).
PROMO_COLUMNS = ["employee_id", "department", "region", "education", "gender", "recruitment_channel",
                 "no_of_trainings", "age", "previous_year_rating", "length_of_service", "KPIs_met >80%",
                 "awards_won?", "avg_training_score", "is_promoted"]
# The renamed copy ("Employees Promotion.csv"): no KPIs column, YES/NO label.
PROMO_RENAMED = {"EmployeeID": "employee_id", "Department": "department", "Region_Employment": "region",
                 "Education Level": "education", "Gender": "gender", "Recruitment Channel": "recruitment_channel",
                 "NO_Trainings_LstYear": "no_of_trainings", "Age": "age",
                 "previous_year_rating": "previous_year_rating", "Service Length": "length_of_service",
                 "Awards": "awards_won?", "Avg_Training_Score": "avg_training_score", "Is Promoted": "is_promoted"}
PROMO_NUMERIC = ["no_of_trainings", "age", "previous_year_rating", "length_of_service", "KPIs_met >80%",
                 "awards_won?", "avg_training_score"]
PROMO_CATEGORICAL = ["department", "region", "education", "gender", "recruitment_channel"]
PROMO_LABEL = "is_promoted"

_YES = {"yes": 1, "no": 0, "1": 1, "0": 0, "true": 1, "false": 0, "y": 1, "n": 0}


class DataError(ValueError):
    """The input data cannot be used (missing/malformed file, wrong columns, bad label values)."""


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    frame: pd.DataFrame  # feature columns (raw) + `label` as int 0/1
    label: str  # the label column's name in `frame`
    positive_label: str  # the raw value that maps to 1
    numeric: list[str]
    categorical: list[str]
    sha256: str
    synthetic: bool = False
    dropped: list[str] = field(default_factory=list)
    facets: dict[str, bool] = field(default_factory=dict)  # bias facet column -> guarded by the gate

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def y(self) -> np.ndarray:
        return self.frame[self.label].to_numpy(dtype=np.int64)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from e
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    return data


def _parse_csv(path: Path, data: bytes) -> pd.DataFrame:
    text = data.decode("utf-8-sig", errors="replace")
    try:
        sep = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: malformed CSV ({e})") from e
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    return frame


def _require_columns(path: Path, frame: pd.DataFrame, required: list[str]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}; found {list(frame.columns)}")


def _binary_label(path: Path, values: pd.Series, name: str) -> pd.Series:
    """Map yes/no, 1/0, true/false (any case) to 0/1; anything else is an error."""
    raw = values.astype("string").str.strip().str.lower()
    if raw.isna().any():
        raise DataError(f"{path}: label column {name!r} has {int(raw.isna().sum())} missing values")
    mapped = raw.map(_YES)
    bad = sorted(set(raw[mapped.isna()]))
    if bad:
        raise DataError(f"{path}: label column {name!r} must be yes/no or 1/0, found {bad[:5]}")
    if mapped.nunique() < 2:
        raise DataError(f"{path}: label column {name!r} has a single class; need both 0 and 1")
    return mapped.astype(np.int64)


def _numeric(path: Path, frame: pd.DataFrame, columns: list[str]) -> None:
    for col in columns:
        converted = pd.to_numeric(frame[col], errors="coerce")
        bad = frame[col].notna() & converted.isna()
        if bad.any():
            raise DataError(f"{path}: column {col!r} must be numeric, found {frame[col][bad].iloc[0]!r}")
        frame[col] = converted.astype(np.float64)


def _categorical(frame: pd.DataFrame, columns: list[str]) -> None:
    for col in columns:
        frame[col] = frame[col].astype("string").str.strip().fillna("missing").astype(object)


def load_bank(path: Path | str = BANK_CSV, *, with_duration: bool = False) -> Dataset:
    """UCI Bank Marketing (`bank-additional-full.csv`, gzipped or not). `duration` leaks the outcome and is
    dropped unless `with_duration` (benchmark only)."""
    path = Path(path)
    data = _read_bytes(path)
    frame = _parse_csv(path, data)
    _require_columns(path, frame, [*BANK_NUMERIC, *BANK_CATEGORICAL, BANK_LABEL])
    frame = frame[[*BANK_NUMERIC, *BANK_CATEGORICAL, BANK_LABEL]].copy()
    frame[BANK_LABEL] = _binary_label(path, frame[BANK_LABEL], BANK_LABEL)
    _numeric(path, frame, BANK_NUMERIC)
    _categorical(frame, BANK_CATEGORICAL)
    numeric = [c for c in BANK_NUMERIC if with_duration or c != "duration"]
    dropped = [] if with_duration else ["duration"]
    frame = frame.drop(columns=dropped)
    # Informational facet (not a guarded attribute of this data set): age group, as SageMaker Clarify examples do.
    frame["age_group"] = pd.cut(frame["age"], [0, 29, 59, 200], labels=["<30", "30-59", "60+"]).astype(str)
    return Dataset(name="bank-marketing", source=str(path), frame=frame, label=BANK_LABEL, positive_label="yes",
                   numeric=numeric, categorical=list(BANK_CATEGORICAL), sha256=_sha256(data), dropped=dropped,
                   facets={"age_group": False})


def _promotion_frame(path: Path, frame: pd.DataFrame, sha256: str, *, synthetic: bool, source: str) -> Dataset:
    if "EmployeeID" in frame.columns or "Is Promoted" in frame.columns:
        _require_columns(path, frame, list(PROMO_RENAMED))
        frame = frame.rename(columns=PROMO_RENAMED)
    required = [c for c in PROMO_COLUMNS if c != "KPIs_met >80%"]  # the renamed copy has no KPIs column
    _require_columns(path, frame, required)
    numeric = [c for c in PROMO_NUMERIC if c in frame.columns]
    frame = frame[[*numeric, *PROMO_CATEGORICAL, PROMO_LABEL]].copy()
    frame[PROMO_LABEL] = _binary_label(path, frame[PROMO_LABEL], PROMO_LABEL)
    if frame["awards_won?"].dtype == object or pd.api.types.is_string_dtype(frame["awards_won?"]):
        frame["awards_won?"] = _binary_label(path, frame["awards_won?"].fillna("no"), "awards_won?")
    _numeric(path, frame, numeric)
    frame["region"] = frame["region"].astype("string").str.replace(r"^(\d+)$", r"region_\1", regex=True)
    frame["gender"] = frame["gender"].astype("string").str.strip().str.lower().str[:1]
    _categorical(frame, PROMO_CATEGORICAL)
    return Dataset(name="employee-promotion", source=source, frame=frame, label=PROMO_LABEL,
                   positive_label="1", numeric=numeric, categorical=list(PROMO_CATEGORICAL), sha256=sha256,
                   synthetic=synthetic, dropped=["employee_id"], facets={"gender": True})


def load_promotion(path: Path | str) -> Dataset:
    """The employee-promotion CSV you supply (Kaggle "HR Analytics" schema or the renamed copy)."""
    path = Path(path)
    data = _read_bytes(path)
    return _promotion_frame(path, _parse_csv(path, data), _sha256(data), synthetic=False, source=str(path))


def load_csv(path: Path | str, *, with_duration: bool = False) -> Dataset:
    """A user-supplied file in one of the known schemas, recognised by its columns."""
    path = Path(path)
    data = _read_bytes(path)
    frame = _parse_csv(path, data)
    cols = set(frame.columns)
    if BANK_LABEL in cols:
        return load_bank(path, with_duration=with_duration)
    if PROMO_LABEL in cols or "Is Promoted" in cols:
        return _promotion_frame(path, frame, _sha256(data), synthetic=False, source=str(path))
    raise DataError(f"{path}: unknown schema; expected the Bank Marketing columns (label {BANK_LABEL!r}) or "
                    f"the HR Analytics columns (label {PROMO_LABEL!r}); found {sorted(cols)}")


def subsample(dataset: Dataset, rows: int, *, seed: int) -> Dataset:
    """A seeded, label-stratified subsample (for fast tests and quick demos); `source` says so."""
    if rows >= len(dataset.frame):
        return dataset
    rng = np.random.default_rng(seed)
    y = dataset.y
    keep = np.concatenate([rng.choice(np.flatnonzero(y == k), size=max(1, round(rows * (y == k).mean())),
                                      replace=False) for k in (0, 1)])
    frame = dataset.frame.iloc[np.sort(keep)].reset_index(drop=True)
    return replace(dataset, frame=frame, source=f"{dataset.source} (subsample of {len(frame)} rows, seed {seed})")


# -------------------------------------------------------------------------------------------------------------
# Synthetic employee promotion data (documented as synthetic; the real file is not redistributable)
# -------------------------------------------------------------------------------------------------------------

_DEPARTMENTS = {"Sales & Marketing": 0.307, "Operations": 0.207, "Procurement": 0.130, "Technology": 0.130,
                "Analytics": 0.098, "Finance": 0.046, "HR": 0.044, "Legal": 0.019, "R&D": 0.019}
_DEPT_SCORE = {"Sales & Marketing": 50, "Operations": 60, "Procurement": 70, "Technology": 80, "Analytics": 84,
               "Finance": 60, "HR": 50, "Legal": 59, "R&D": 85}
_EDUCATION = {"Bachelor's": 0.669, "Master's & above": 0.272, "Below Secondary": 0.015, "missing": 0.044}
_CHANNEL = {"other": 0.555, "sourcing": 0.424, "referred": 0.021}


def synthetic_promotion(rows: int = 54_808, *, seed: int = 0, gender_bias: float = 0.0,
                        promoted_rate: float = 0.085) -> Dataset:
    """A seeded synthetic table with the HR Analytics schema and its marginals (about 8.5 % promoted).

    Promotion depends on KPIs, awards, training score, last year's rating and service. `gender_bias` adds
    that many log-odds for men and subtracts it for women, so the bias guardrail has something to catch
    (0 = no direct effect of gender).
    """
    if rows < 100:
        raise DataError("synthetic_promotion needs at least 100 rows")
    rng = np.random.default_rng(seed)

    def pick(choices: dict[str, float]) -> np.ndarray:
        p = np.array(list(choices.values()))
        return rng.choice(list(choices), size=rows, p=p / p.sum())

    department = pick(_DEPARTMENTS)
    region_p = rng.dirichlet(np.full(34, 0.6))
    region = rng.choice([f"region_{i}" for i in range(1, 35)], size=rows, p=region_p)
    education = pick(_EDUCATION)
    gender = rng.choice(["m", "f"], size=rows, p=[0.70, 0.30])
    channel = pick(_CHANNEL)
    trainings = np.minimum(1 + rng.geometric(0.82, size=rows) - 1, 10)
    age = np.clip(np.round(rng.gamma(20.0, 1.75, size=rows)), 20, 60)
    service = np.clip(np.round(rng.gamma(2.2, 2.6, size=rows)), 1, np.maximum(age - 19, 1))
    rating = np.clip(np.round(rng.normal(3.3, 1.2, size=rows)), 1, 5)
    rating[service == 1] = np.nan  # new joiners have no rating, as in the real file
    kpi = (rng.random(rows) < 0.30 + 0.06 * np.nan_to_num(rating - 3.3)).astype(float)
    awards = (rng.random(rows) < 0.023).astype(float)
    base_score = np.array([_DEPT_SCORE[d] for d in department], dtype=float)
    score = np.clip(np.round(base_score + rng.normal(0, 8, size=rows)), 39, 99)

    logit = (1.9 * kpi + 2.4 * awards + 0.09 * (score - base_score) + 0.35 * np.nan_to_num(rating - 3.3)
             - 0.05 * (trainings - 1) + 0.012 * (service - 6) + np.where(gender == "m", gender_bias, -gender_bias))
    # Intercept chosen so the expected promoted share is `promoted_rate`.
    lo, hi = -15.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (1 / (1 + np.exp(-(logit + mid)))).mean() < promoted_rate else (lo, mid)
    promoted = (rng.random(rows) < 1 / (1 + np.exp(-(logit + lo)))).astype(np.int64)

    frame = pd.DataFrame({
        "employee_id": np.arange(1, rows + 1), "department": department, "region": region,
        "education": education, "gender": gender, "recruitment_channel": channel, "no_of_trainings": trainings,
        "age": age, "previous_year_rating": rating, "length_of_service": service, "KPIs_met >80%": kpi,
        "awards_won?": awards, "avg_training_score": score, "is_promoted": promoted,
    })
    frame.loc[frame["education"] == "missing", "education"] = np.nan
    digest = _sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    source = f"synthetic(rows={rows}, seed={seed}, gender_bias={gender_bias})"
    return _promotion_frame(Path("<synthetic>"), frame, digest, synthetic=True, source=source)
