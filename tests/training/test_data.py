"""Loaders: real files, synthetic data, and clear errors on bad input before any training."""

import gzip

import pytest

from training.data import (
    BANK_CSV,
    DataError,
    load_bank,
    load_csv,
    load_promotion,
    subsample,
    synthetic_promotion,
)

BANK_HEADER = ('"age";"job";"marital";"education";"default";"housing";"loan";"contact";"month";"day_of_week";'
               '"duration";"campaign";"pdays";"previous";"poutcome";"emp.var.rate";"cons.price.idx";'
               '"cons.conf.idx";"euribor3m";"nr.employed";"y"')
BANK_ROW = '56;"housemaid";"married";"basic.4y";"no";"no";"no";"telephone";"may";"mon";261;1;999;0;' \
           '"nonexistent";1.1;93.994;-36.4;4.857;5191;"{y}"'


def _bank_file(tmp_path, labels):
    path = tmp_path / "bank.csv"
    path.write_text("\n".join([BANK_HEADER, *(BANK_ROW.format(y=y) for y in labels)]) + "\n")
    return path


def test_bank_marketing_vendored_file_loads_without_duration():
    ds = load_bank()
    assert len(ds.frame) == 41_188
    assert ds.y.sum() == 4_640
    assert "duration" not in ds.features and ds.dropped == ["duration"]
    assert ds.sha256 == load_bank().sha256


def test_bank_with_duration_keeps_it():
    assert "duration" in load_bank(with_duration=True).features


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_bank(tmp_path / "nope.csv")


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "bank.csv.gz"
    path.write_bytes(gzip.compress(BANK_CSV.read_bytes())[:100])
    with pytest.raises(DataError, match="gzip"):
        load_bank(path)


def test_empty_and_malformed_csv(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("   \n")
    with pytest.raises(DataError, match="empty"):
        load_bank(empty)
    bad = tmp_path / "bad.csv"
    bad.write_text('a,b\n"unterminated,1\n')
    with pytest.raises(DataError):
        load_bank(bad)


def test_wrong_columns_name_what_is_missing(tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text("age;job;y\n30;admin.;no\n")
    with pytest.raises(DataError, match=r"missing columns \[.*'marital'"):
        load_bank(path)


def test_label_with_other_values(tmp_path):
    with pytest.raises(DataError, match="must be yes/no or 1/0, found \\['maybe'\\]"):
        load_bank(_bank_file(tmp_path, ["yes", "no", "maybe"]))


def test_single_class_label(tmp_path):
    with pytest.raises(DataError, match="single class"):
        load_bank(_bank_file(tmp_path, ["no", "no"]))


def test_non_numeric_value_in_numeric_column(tmp_path):
    path = _bank_file(tmp_path, ["yes", "no"])
    path.write_text(path.read_text().replace("56;", "fifty;", 1))
    with pytest.raises(DataError, match="'age' must be numeric"):
        load_bank(path)


def test_load_csv_recognises_schemas_and_rejects_unknown(tmp_path):
    assert load_csv(_bank_file(tmp_path, ["yes", "no"])).name == "bank-marketing"
    other = tmp_path / "other.csv"
    other.write_text("a,b,target\n1,2,0\n")
    with pytest.raises(DataError, match="unknown schema"):
        load_csv(other)


def test_synthetic_promotion_marginals_and_bias_knob():
    fair = synthetic_promotion(rows=20_000, seed=3, gender_bias=0.0)
    rate = fair.y.mean()
    assert 0.07 < rate < 0.10
    by_gender = fair.frame.groupby("gender")["is_promoted"].mean()
    assert by_gender.min() / by_gender.max() > 0.8
    biased = synthetic_promotion(rows=20_000, seed=3, gender_bias=1.5)
    by_gender = biased.frame.groupby("gender")["is_promoted"].mean()
    assert by_gender["f"] / by_gender["m"] < 0.2
    assert biased.synthetic and biased.facets == {"gender": True}
    assert synthetic_promotion(rows=500, seed=1).sha256 == synthetic_promotion(rows=500, seed=1).sha256


def test_promotion_loader_accepts_kaggle_and_renamed_schemas(tmp_path):
    frame = synthetic_promotion(rows=300, seed=2).frame
    kaggle = tmp_path / "train.csv"
    out = frame.copy()
    out.insert(0, "employee_id", range(len(out)))
    out.to_csv(kaggle, index=False)
    assert load_promotion(kaggle).features == synthetic_promotion(rows=300, seed=2).features

    renamed = out.drop(columns=["KPIs_met >80%"]).rename(columns={
        "employee_id": "EmployeeID", "department": "Department", "region": "Region_Employment",
        "education": "Education Level", "gender": "Gender", "recruitment_channel": "Recruitment Channel",
        "no_of_trainings": "NO_Trainings_LstYear", "age": "Age", "length_of_service": "Service Length",
        "awards_won?": "Awards", "avg_training_score": "Avg_Training_Score", "is_promoted": "Is Promoted"})
    renamed["Is Promoted"] = renamed["Is Promoted"].map({1: "YES", 0: "NO"})
    renamed["Gender"] = renamed["Gender"].map({"m": "Male", "f": "Female"})
    renamed["Awards"] = renamed["Awards"].map({1.0: "YES", 0.0: "NO"})
    path = tmp_path / "Employees Promotion.csv"
    renamed.to_csv(path, index=False)
    ds = load_promotion(path)
    assert "KPIs_met >80%" not in ds.features
    assert set(ds.frame["gender"]) == {"m", "f"}
    assert ds.y.sum() == frame["is_promoted"].sum()


def test_subsample_is_stratified_and_seeded():
    ds = load_bank()
    small = subsample(ds, 4_000, seed=3)
    assert abs(len(small.frame) - 4_000) <= 1
    assert abs(small.y.mean() - ds.y.mean()) < 0.001
    assert small.frame.equals(subsample(ds, 4_000, seed=3).frame)
    assert "subsample" in small.source
    assert subsample(ds, 10**6, seed=3) is ds
