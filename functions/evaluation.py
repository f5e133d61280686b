"""The `evaluation.json` written by training beside every `model.tar.gz`, read by the quality gate.

Pure pydantic + standard library (runs in the Lambda). Everything a check needs is a plain number or list:
drift checks (PSI, KS on a binned CDF, chi-square) can use `baseline` without numpy.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1.0"


class _Model(BaseModel):
    # Unknown keys are kept (newer writers may add fields), so reading never loses data. Strict: "0.95" or
    # true is not an AUC (a JSON integer still is a number).
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


class Metrics(_Model):
    """Binary-classification quality on one split, at `threshold` for the thresholded metrics."""

    auc: float = Field(ge=0, le=1)
    accuracy: float = Field(ge=0, le=1)
    precision: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1)
    f1: float = Field(ge=0, le=1)
    log_loss: float = Field(ge=0)
    brier: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    rows: int = Field(ge=1)
    positives: int = Field(ge=0)
    predicted_positive_rate: float = Field(ge=0, le=1)


class CalibrationBin(_Model):
    lower: float
    upper: float
    count: int = Field(ge=0)
    mean_predicted: float | None = None  # None when the bin is empty
    fraction_positive: float | None = None


class Calibration(_Model):
    """Reliability diagram on the test split (equal-width bins over [0, 1])."""

    brier: float = Field(ge=0, le=1)
    expected_calibration_error: float = Field(ge=0, le=1)
    bins: list[CalibrationBin]


class SplitInfo(_Model):
    rows: int = Field(ge=0)
    positives: int = Field(ge=0)
    sha256: str  # of the split's CSV bytes as written (label first, no header)


class DatasetInfo(_Model):
    name: str  # "bank-marketing", "employee-promotion", or a file name
    source: str  # where it came from (file path or "synthetic")
    synthetic: bool = False
    sha256: str  # of the raw input file or of the generated frame
    rows: int = Field(ge=1)
    label: str  # the raw label column
    positive_label: str  # the raw value mapped to 1
    dropped_columns: list[str] = []
    seed: int
    splits: dict[str, SplitInfo]  # train, validation, test, holdout


class GroupRate(_Model):
    group: str
    count: int = Field(ge=0)
    selection_rate: float = Field(ge=0, le=1)  # predicted positive rate
    base_rate: float = Field(ge=0, le=1)  # observed positive (label) rate
    true_positive_rate: float | None = None


class FacetBias(_Model):
    """Bias on one sensitive facet (e.g. gender), on the test split.

    `disparate_impact` is the ratio of predicted positive rates (min/max over groups, 1 = parity);
    `difference_in_positive_proportions` is the SageMaker Clarify DPPL on predictions (max - min);
    `label_*` are the same on the observed labels (pre-training bias of the data).
    """

    facet: str
    guarded: bool = True  # the quality gate enforces bounds on guarded facets; others are informational
    groups: list[GroupRate]
    demographic_parity_difference: float = Field(ge=0, le=1)
    demographic_parity_ratio: float = Field(ge=0, le=1)
    disparate_impact: float = Field(ge=0, le=1)
    difference_in_positive_proportions: float = Field(ge=0, le=1)
    label_disparate_impact: float = Field(ge=0, le=1)
    label_difference_in_positive_proportions: float = Field(ge=0, le=1)
    equalized_odds_difference: float | None = None


class NumericBaseline(_Model):
    """Baseline of one numeric input column (the column fed to the endpoint)."""

    kind: Literal["numeric"] = "numeric"
    column: str
    count: int = Field(ge=0)
    missing: int = Field(ge=0)
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    quantiles: dict[str, float]  # "p01", "p05", "p25", "p50", "p75", "p95", "p99"
    # Interior cut points, ascending: bin 0 is (-inf, e0), bin i is [e(i-1), e(i)), the last is [e(k-1), +inf),
    # so a value's bin is `bisect.bisect_right(bin_edges, x)`. Proportions are over non-missing values.
    bin_edges: list[float]
    bin_proportions: list[float]

    @model_validator(mode="after")
    def _bins_match(self) -> NumericBaseline:
        if len(self.bin_proportions) != len(self.bin_edges) + 1:
            raise ValueError("bin_proportions must have one more entry than bin_edges")
        if any(b <= a for a, b in zip(self.bin_edges, self.bin_edges[1:], strict=False)):
            raise ValueError("bin_edges must be strictly ascending")
        return self


class CategoricalBaseline(_Model):
    """Baseline of one categorical input, one-hot encoded into `columns` (category -> endpoint column)."""

    kind: Literal["categorical"] = "categorical"
    count: int = Field(ge=0)
    missing: int = Field(ge=0)
    columns: dict[str, str]
    proportions: dict[str, float]  # category -> share of rows, sums to 1


FeatureBaseline = Annotated[NumericBaseline | CategoricalBaseline, Field(discriminator="kind")]


class Baseline(_Model):
    """Training-data statistics for drift checks, keyed by raw input feature name."""

    split: str = "train"
    rows: int = Field(ge=1)
    features: dict[str, FeatureBaseline]
    prediction: NumericBaseline  # distribution of the model's scores on the test split


class TrainingInfo(_Model):
    method: str  # "optuna", "sagemaker-hpo", "fixed"
    trials: int = Field(ge=0)
    rank: int | None = None  # 1 = best trial, 2 = runner-up
    trial_number: int | None = None
    validation_auc: float | None = None
    best_iteration: int | None = None
    seconds: float | None = None


class GoldenSample(_Model):
    """A few rows exactly as the endpoint receives them (text/csv, no label) and the scores training's xgboost
    gave them: pre-flight scores them again with the uploaded artifact, loaded as the container loads it."""

    content_type: Literal["text/csv"] = "text/csv"
    split: str = "test"  # where the rows come from
    rows: list[str] = Field(min_length=1, max_length=1000)  # one CSV line each, the endpoint's column order
    predictions: list[float]  # one per row, what the model answered at training (xgboost `xgboost_version`)
    num_features: int = Field(ge=1)  # booster.num_features() of the model packaged (the container reads no names)

    @model_validator(mode="after")
    def _one_prediction_per_row(self) -> GoldenSample:
        if len(self.predictions) != len(self.rows):
            raise ValueError("golden: one prediction per row")
        if any("\n" in row or "\r" in row for row in self.rows):
            raise ValueError("golden: a row is one CSV line")
        return self


class ModelEvaluation(_Model):
    """The whole evaluation.json."""

    schema_version: str = SCHEMA_VERSION
    model_name: str
    created_at: str  # ISO 8601 UTC
    algorithm: str = "xgboost"
    objective: str = "binary:logistic"
    xgboost_version: str  # of the library that trained and saved the model
    python_version: str
    container_image: str  # the serving image the artifact is built for
    container_framework_version: str  # e.g. "3.0-5"
    artifact_file: str = "xgboost-model"  # file inside model.tar.gz
    content_type: str = "text/csv"
    label: str  # name of the (0/1) label, never sent to the endpoint
    features: list[str]  # endpoint CSV column order
    dataset: DatasetInfo
    metrics: Metrics  # on the test split
    validation_metrics: Metrics | None = None
    calibration: Calibration
    bias: list[FacetBias] = []
    baseline: Baseline
    hyperparameters: dict[str, float | int | str | bool]
    training: TrainingInfo
    scenario: str | None = None  # which demo scenario this artifact was built for
    notes: list[str] = []
    golden: GoldenSample | None = None  # pre-flight's golden sample (older reports have none)

    @model_validator(mode="after")
    def _features_unique(self) -> ModelEvaluation:
        if not self.features:
            raise ValueError("features must not be empty")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features must be unique")
        if self.label in self.features:
            raise ValueError("the label must not be a feature")
        return self

    def facet(self, name: str) -> FacetBias | None:
        return next((f for f in self.bias if f.facet == name), None)
