"""Settings from the Lambda environment, validated once at cold start.

Environment variables (upper-case of the template parameter / field name; defaults in brackets):

  resources      TABLE_NAME, TOPIC_ARN, MODEL_BUCKET, ENDPOINT_NAME [guardrail-endpoint],
                 MODEL_PREFIX [models/], SAGEMAKER_ROLE_ARN, SHADOW_EXPERIMENT_ROLE_ARN,
                 DATA_CAPTURE_URI (s3://bucket/prefix)
  serving        SERVING_IMAGE, INSTANCE_TYPE [ml.m5.large], INSTANCE_COUNT [1],
                 PRODUCTION_VARIANT_NAME [AllTraffic: a new endpoint's; later configs keep the live name]
  rollout        DEFAULT_STRATEGY [CANARY | ALL_AT_ONCE | LINEAR | ROLLING], CANARY_PERCENT [25],
                 LINEAR_STEP_PERCENT [25], ROLLING_BATCH_PERCENT [25: 5-50, RollingUpdatePolicy.MaximumBatchSize],
                 WAIT_INTERVAL_SECONDS [300], TERMINATION_WAIT_SECONDS [120],
                 MAX_EXECUTION_TIMEOUT_SECONDS [1800], POST_DEPLOYMENT_WATCH_SECONDS [300],
                 POLL_INTERVAL_SECONDS [30], MAX_POLL_ATTEMPTS [120]
  alarms         ALARM_PERIOD_SECONDS [60], ALARM_EVALUATION_PERIODS [1], ALARM_DATAPOINTS_TO_ALARM [=periods],
                 ERROR_RATE_THRESHOLD [0.05], LATENCY_THRESHOLD_MICROS [100000],
                 LATENCY_STATISTIC [Average | p99 | any pNN]
  quality gate   MIN_AUC [0.75], MAX_AUC_DROP [0.01], MAX_DISPARATE_IMPACT_DEVIATION [0.2],
                 MAX_POSITIVE_PROPORTION_DIFFERENCE [0.2], BIAS_FACETS [comma list; empty = all facets]
  shadow         SHADOW_SAMPLING_PERCENT [100], SHADOW_DURATION_SECONDS [3600],
                 SHADOW_MIN_INVOCATIONS [100], SHADOW_MAX_ERROR_RATE_DELTA [0.01],
                 SHADOW_MAX_LATENCY_RATIO [1.5], SHADOW_LATENCY_SLACK_MICROS [5000]
  evidence       SHADOW_METHOD [thresholds | msprt: the sequential verdict, the template's default],
                 METRIC_PERIOD_SECONDS [60; 1 locally], SHADOW_ALPHA [0.05], SHADOW_ERROR_MARGIN [0.005],
                 SHADOW_LATENCY_MARGIN [0.10], SHADOW_MIN_LATENCY_SAMPLES [30], SHADOW_AUC_MARGIN [0.01],
                 SHADOW_MAX_MALFORMED_FRACTION [0.5], SHADOW_ON_INCONCLUSIVE [Remove],
                 GROUND_TRUTH_URI (s3:// prefix, Model Monitor layout), DRIFT_PSI_MAJOR [0.2],
                 DATA_QUALITY_MAX_BREACH_FRACTION [0.05], DATA_CHECK_WINDOW_SECONDS [3600],
                 DATA_CHECK_MIN_ROWS [50]
  canary         CANARY_VERDICT [alarms-only | msprt: the sequential verdict also judges the canary fleet
                 and publishes Guardrail/CanaryVerdict Regression=1 on REJECT; the template's default]
  evidence of    MIN_REQUESTS [100: requests the new fleet serves during bakes + watch], EVIDENCE_POLICY
  an update      [rollback | extend | accept], EVIDENCE_MAX_EXTENSIONS [3 watch windows]
  approval       APPROVAL_BEFORE_PROMOTE [false], APPROVAL_BEFORE_UPDATE [false], APPROVAL_TIMEOUT_SECONDS [3600],
                 APPROVAL_ON_TIMEOUT [reject | approve] (deployment.json `approval` overrides them per upload)
  lock           LOCK_TTL_SECONDS [3600], IDEMPOTENCY_TTL_SECONDS [604800], SUPERSEDE [false: a newer upload
                 supersedes older ones still waiting their turn; deployment.json `supersede` overrides it]
  housekeeping   KEEP_VERSIONS [2: endpoint configs (and their models) kept for rollback besides the serving one]

Each handler calls `load_settings(required=(...))` at import, naming the resources it needs, so a function
deployed without them fails at cold start with a clear message rather than mid-deployment.
DynamoDB table: partition key `pk` (String), TTL attribute `expires_at`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from functions.models import Strategy


class ConfigurationError(Exception):
    """The function's environment is missing or has invalid settings."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    table_name: str | None = None
    topic_arn: str | None = None
    model_bucket: str | None = None
    endpoint_name: str = Field(default="guardrail-endpoint", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    model_prefix: str = "models/"
    sagemaker_role_arn: str | None = None
    shadow_experiment_role_arn: str | None = None  # CreateInferenceExperiment RoleArn (manages the endpoint)
    data_capture_uri: str | None = Field(default=None, pattern=r"^(s3|https)://.+")

    serving_image: str | None = None
    # Production variant name of a NEW endpoint; an existing endpoint keeps its live name (blue/green rule).
    production_variant_name: str = Field(default="AllTraffic", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    instance_type: str = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1)

    default_strategy: Strategy = Strategy.CANARY
    canary_percent: int = Field(default=25, ge=1, le=50)
    linear_step_percent: int = Field(default=25, ge=10, le=50)
    rolling_batch_percent: int = Field(default=25, ge=5, le=50)
    wait_interval_seconds: int = Field(default=300, ge=0, le=3600)
    termination_wait_seconds: int = Field(default=120, ge=0, le=3600)
    max_execution_timeout_seconds: int = Field(default=1800, ge=600, le=28800)
    post_deployment_watch_seconds: int = Field(default=300, ge=0)
    poll_interval_seconds: int = Field(default=30, ge=1)
    max_poll_attempts: int = Field(default=120, ge=1)

    alarm_period_seconds: int = Field(default=60, ge=10)
    alarm_evaluation_periods: int = Field(default=1, ge=1)
    alarm_datapoints_to_alarm: int | None = Field(default=None, ge=1)
    error_rate_threshold: float = Field(default=0.05, gt=0, le=1)
    latency_threshold_micros: float = Field(default=100_000, gt=0)
    latency_statistic: str = Field(default="Average", pattern=r"^(Average|Maximum|p\d{1,2}(\.\d+)?)$")

    min_auc: float = Field(default=0.75, ge=0, le=1)
    max_auc_drop: float = Field(default=0.01, ge=0, le=1)
    max_disparate_impact_deviation: float = Field(default=0.2, ge=0, le=1)
    max_positive_proportion_difference: float = Field(default=0.2, ge=0, le=1)
    bias_facets: tuple[str, ...] = ()

    shadow_sampling_percent: int = Field(default=100, ge=1, le=100)
    shadow_duration_seconds: int = Field(default=3600, ge=1)
    shadow_min_invocations: int = Field(default=100, ge=1)  # = VerdictPolicy.min_requests and the template default
    shadow_max_error_rate_delta: float = Field(default=0.01, ge=0, le=1)
    shadow_max_latency_ratio: float = Field(default=1.5, gt=0)
    shadow_latency_slack_micros: float = Field(default=5000, ge=0)  # differences below this are noise

    # Evidence (functions.stats): the sequential verdict, ground-truth pairing, drift and data quality.
    shadow_method: Literal["thresholds", "msprt"] = "thresholds"
    metric_period_seconds: int = Field(default=60, ge=1)  # 1 s periods keep per-request latency locally
    # EndpointConfig MetricsConfig.MetricPublishFrequencyInSeconds (AWS default 60; alarm periods are multiples).
    metric_publish_frequency_seconds: int = Field(default=60, ge=10, le=300)
    # The final shadow check's capture read (audit row 8; limits from bench/capture_limits.py, docs/benchmarks.md):
    # records kept per variant (sampled by request id above it) and seconds for both variants' reads.
    capture_max_records: int = Field(default=90_000, ge=100)  # ~2.7 KB each: < half of 512 MB
    capture_read_seconds: float = Field(default=60, gt=0)
    shadow_alpha: float = Field(default=0.05, gt=0, lt=0.5)
    shadow_error_margin: float = Field(default=0.005, gt=0, lt=1)
    shadow_tail_margin: float = Field(default=0.01, gt=0, lt=1)  # share of requests above production's p99
    shadow_latency_margin: float = Field(default=0.10, gt=0)
    shadow_min_latency_samples: int = Field(default=30, ge=2)
    shadow_auc_margin: float = Field(default=0.01, gt=0, lt=1)
    shadow_max_malformed_fraction: float = Field(default=0.5, ge=0, le=1)
    shadow_on_inconclusive: Literal["Promote", "Remove"] = "Remove"
    ground_truth_uri: str | None = Field(default=None, pattern=r"^s3://.+")
    drift_psi_major: float = Field(default=0.2, gt=0)
    data_quality_max_breach_fraction: float = Field(default=0.05, ge=0, le=1)
    data_check_window_seconds: int = Field(default=3600, ge=1)
    data_check_min_rows: int = Field(default=100, ge=1)  # drift: G test + Bonferroni, false alarm <= 5 % measured at 50-200
    canary_verdict: Literal["msprt", "alarms-only"] = "alarms-only"
    # No evidence, no promotion (issue 11 §3): requests the new fleet must have served between UpdateEndpoint and
    # the end of the post-deployment watch; below it `evidence_policy` decides (functions.steps.evidence).
    min_requests: int = Field(default=100, ge=0)
    evidence_policy: Literal["rollback", "extend", "accept"] = "rollback"
    evidence_max_extensions: int = Field(default=3, ge=0, le=20)  # extra watch windows for `extend`
    # Approval gates (issue 15 §1): the stack's defaults; deployment.json `approval` overrides them per upload.
    approval_before_promote: bool = False
    approval_before_update: bool = False
    approval_timeout_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    approval_on_timeout: Literal["reject", "approve"] = "reject"

    lock_ttl_seconds: int = Field(default=3600, ge=60)
    idempotency_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    supersede: bool = False  # issue 12 §4: the template's Supersede
    keep_versions: int = Field(default=2, ge=1)  # >= 1: the previous config is the rollback target

    @field_validator("model_prefix")
    @classmethod
    def _prefix_slash(cls, value: str) -> str:
        value = value.lstrip("/")
        return value if not value or value.endswith("/") else value + "/"

    @field_validator("bias_facets", mode="before")
    @classmethod
    def _split_facets(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(f.strip() for f in value.split(",") if f.strip())
        return value

    @field_validator("metric_publish_frequency_seconds")
    @classmethod
    def _publish_frequency(cls, value: int) -> int:
        if value not in (10, 30, 60, 120, 180, 240, 300):  # MetricsConfig allows only these
            raise ValueError("METRIC_PUBLISH_FREQUENCY_SECONDS must be 10, 30, 60, 120, 180, 240 or 300")
        return value

    @model_validator(mode="after")
    def _timeout_covers_waits(self) -> Settings:
        # AWS: MaximumExecutionTimeout should exceed the total of the wait intervals and termination wait.
        if self.max_execution_timeout_seconds <= self.wait_interval_seconds + self.termination_wait_seconds:
            raise ValueError(
                "MAX_EXECUTION_TIMEOUT_SECONDS must exceed WAIT_INTERVAL_SECONDS + TERMINATION_WAIT_SECONDS"
            )
        return self

    def require(self, *names: str) -> None:
        missing = [n.upper() for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise ConfigurationError(f"missing required environment variable(s): {', '.join(missing)}")


def settings_from(environ: Mapping[str, str], required: Iterable[str] = ()) -> Settings:
    """Build and validate settings from an environment mapping (upper-case names)."""
    fields = Settings.model_fields
    values = {name: environ[name.upper()] for name in fields if environ.get(name.upper(), "") != ""}
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid environment: {problems}") from exc
    settings.require(*required)
    return settings


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return settings_from(os.environ)


def load_settings(required: Iterable[str] = ()) -> Settings:
    """Settings of this process (cached: the environment of a Lambda never changes)."""
    settings = _cached()
    settings.require(*required)
    return settings


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    _cached.cache_clear()
