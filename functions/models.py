"""Typed shapes of everything that crosses a boundary: the trigger event, `deployment.json`, the execution
document each state reads, what each state writes at its key, and the SNS notification.

Inputs (`*Input`) parse the WHOLE execution document and ignore keys they do not need; outputs are exactly
what the step returns (the ASL stores it at the step's key with `ResultSelector {"r.$": "$.Payload"}` or
`ResultPath`). Keys (docs/contracts.md): root = EventBridge event, `upload`, `lock`, `gate`, `model`,
`endpoint_config`, `alarms`, `deployment`, `watch`, `shadow`, `error`, `outcome`, plus `execution`
(= `$$.Execution.Name`, the correlation id).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# --------------------------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------------------------


class Strategy(StrEnum):
    ALL_AT_ONCE = "ALL_AT_ONCE"
    CANARY = "CANARY"
    LINEAR = "LINEAR"
    ROLLING = "ROLLING"  # RollingUpdatePolicy: instances replaced in batches in place (issue 15 §3)


class DeploymentMode(StrEnum):
    CREATE = "CREATE"  # no endpoint yet: CreateEndpoint
    UPDATE = "UPDATE"  # guarded blue/green UpdateEndpoint


class DeploymentStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"


class Verdict(StrEnum):
    PROMOTE = "PROMOTE"
    REJECT = "REJECT"
    INCONCLUSIVE = "INCONCLUSIVE"


class Outcome(StrEnum):
    DEPLOYED = "DEPLOYED"
    PROMOTED = "PROMOTED"
    ROLLED_BACK = "ROLLED_BACK"
    REJECTED = "REJECTED"
    SHADOW_REJECTED = "SHADOW_REJECTED"
    FAILED = "FAILED"
    DUPLICATE = "DUPLICATE"
    DRIFT = "DRIFT"
    DATA_QUALITY = "DATA_QUALITY"
    INCONCLUSIVE = "INCONCLUSIVE"
    CHANGED_EXTERNALLY = "CHANGED_EXTERNALLY"  # someone else moved the endpoint during the watch (issue 12)
    ABORTED = "ABORTED"  # ExecutionEnded: the execution was stopped / timed out (issue 12)
    TIMED_OUT = "TIMED_OUT"
    SUPERSEDED = "SUPERSEDED"  # a newer upload for the endpoint took this waiting one's turn (issue 12 §4)
    NOT_APPROVED = "NOT_APPROVED"  # a person (or the approval timeout's default) said no (issue 15 §1)


# defer_build: a handler builds only the schemas it validates, keeping its cold import cheap.
class _Out(BaseModel):
    """A step output: strict about its own fields."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class _In(BaseModel):
    """A step input: the whole execution document, unknown keys ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    execution: str | None = None  # $$.Execution.Name (correlation id); the ASL passes it at `execution`

    @field_validator("execution", mode="before")
    @classmethod
    def _execution_name(cls, value: Any) -> Any:
        # Accept "name", {"Name": ...} ($$.Execution) or an execution ARN.
        if isinstance(value, dict):
            value = value.get("Name") or value.get("Id")
        if isinstance(value, str) and value.startswith("arn:"):
            value = value.rsplit(":", 1)[-1]
        return value


# --------------------------------------------------------------------------------------------------------
# Trigger: EventBridge "Object Created" (S3) and deployment.json
# --------------------------------------------------------------------------------------------------------


class S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    name: str = Field(min_length=3, max_length=63)


class S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)
    key: str = Field(min_length=1, max_length=1024)
    size: int | None = Field(default=None, ge=0)
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None


class S3ObjectCreatedDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)
    bucket: S3Bucket
    object: S3Object
    reason: str | None = None


class S3ObjectCreatedEvent(_In):
    """The EventBridge event that starts an execution (the execution document's root)."""

    version: str = "0"
    id: str
    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    source: Literal["aws.s3"]
    account: str | None = None
    time: str | None = None
    region: str | None = None
    resources: list[str] = []
    detail: S3ObjectCreatedDetail


class ShadowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)
    enabled: bool = False
    sampling_percent: int | None = Field(default=None, ge=1, le=100)
    # The experiment's schedule is ~2x the duration and AWS caps experiments at 30 days (audit row 12).
    duration_seconds: int | None = Field(default=None, ge=1, le=15 * 24 * 3600)


class GuardrailOverrides(BaseModel):
    """`deployment.json` `guardrails`: the shadow verdict's error rate, margins and default for this upload
    (functions.stats.verdict.VerdictPolicy); unset fields keep the template's values."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)
    alpha: float | None = Field(default=None, gt=0, lt=0.5)
    error_margin: float | None = Field(default=None, gt=0, lt=1)
    latency_margin: float | None = Field(default=None, gt=0)
    min_requests: int | None = Field(default=None, ge=2)
    min_latency_samples: int | None = Field(default=None, ge=2)
    auc_margin: float | None = Field(default=None, gt=0, lt=1)
    max_malformed_fraction: float | None = Field(default=None, ge=0, le=1)
    on_inconclusive: Literal["Promote", "Remove"] | None = None
    ground_truth_uri: str | None = Field(default=None, pattern=r"^s3://.+")


class ApprovalRequest(BaseModel):
    """`deployment.json` `approval`: ask a person before promoting a shadow / before updating a live endpoint;
    unset fields keep the stack's (template parameters Approval*)."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)
    before_promote: bool | None = None
    before_update: bool | None = None
    # Step Functions TimeoutSeconds of the waiting task (a Standard execution lasts at most one year)
    timeout_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    on_timeout: Literal["reject", "approve"] | None = None


class DeploymentRequest(BaseModel):
    """`deployment.json` beside the artifact (optional): overrides of the template defaults.

    Percent ranges follow SageMaker's documented limits (canary <= 50 %, linear step 10-50 %, rolling batch 5-50 %;
    the rollback batch has no documented range: 1-100 %, 100 % being AWS's default, the whole old fleet at once).
    """

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)  # "25" is not a percent
    strategy: Strategy | None = Field(default=None, strict=False)  # the enum from its JSON string
    canary_percent: int | None = Field(default=None, ge=1, le=50)
    linear_step_percent: int | None = Field(default=None, ge=10, le=50)
    rolling_batch_percent: int | None = Field(default=None, ge=5, le=50)  # ROLLING: MaximumBatchSize
    rollback_batch_percent: int | None = Field(default=None, ge=1, le=100)  # ROLLING: RollbackMaximumBatchSize
    shadow: ShadowRequest | None = None
    guardrails: GuardrailOverrides | None = None
    # false: skip pre-flight (the demo's alarm-driven rollback of a model the container cannot load)
    preflight: bool | None = None
    # an update whose new fleet served fewer than `guardrails.min_requests` (else MIN_REQUESTS) requests:
    # rollback | extend (watch longer, up to EVIDENCE_MAX_EXTENSIONS windows) | accept (DEPLOYED_UNVERIFIED)
    evidence_policy: Literal["rollback", "extend", "accept"] | None = None
    # true: this upload supersedes older uploads for the endpoint still waiting their turn (issue 12 §4)
    supersede: bool | None = None
    approval: ApprovalRequest | None = None


# --------------------------------------------------------------------------------------------------------
# upload (parse_upload) and lock (acquire_lock / release_lock)
# --------------------------------------------------------------------------------------------------------


class ShadowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    enabled: bool
    sampling_percent: int = Field(ge=1, le=100)
    duration_seconds: int = Field(ge=1)


class ApprovalSettings(BaseModel):
    """The approval gates in force for an upload (deployment.json over the stack's parameters)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    before_promote: bool = False
    before_update: bool = False
    timeout_seconds: int = Field(default=3600, ge=1)
    on_timeout: Literal["reject", "approve"] = "reject"


class ResourceNames(BaseModel):
    """Derived names: SageMaker ones are <= 63 chars [a-zA-Z0-9-] (functions.steps.names)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    model: str
    endpoint_config: str
    shadow_variant: str  # the shadow variant of an inference experiment; production keeps the live name
    error_alarm: str
    latency_alarm: str
    experiment: str


class Upload(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None
    artifact_uri: str  # s3://bucket/models/<name>/<version>/model.tar.gz
    prefix: str  # models/<name>/<version>/
    evaluation_key: str
    deployment_key: str
    model_name: str
    model_version: str
    endpoint_name: str
    strategy: Strategy
    canary_percent: int = Field(ge=1, le=50)
    linear_step_percent: int = Field(ge=10, le=50)
    rolling_batch_percent: int = Field(default=25, ge=5, le=50)
    rollback_batch_percent: int | None = Field(default=None, ge=1, le=100)  # None: AWS's default, 100 %
    shadow: ShadowSettings
    names: ResourceNames
    idempotency_key: str  # upload#<bucket>/<key>#<version-id or etag>
    preflight: bool = True  # deployment.json "preflight" (false skips the pre-flight load and golden sample)
    # deployment.json `guardrails.min_requests` / `evidence_policy`; None: the template's (issue 11 §3)
    min_requests: int | None = None
    evidence_policy: Literal["rollback", "extend", "accept"] | None = None
    # The upload's place in its endpoint's queue (issue 12 §4): the S3 event's time, sequencer and id
    event_time: str | None = None
    sequencer: str | None = None
    event_id: str | None = None
    supersede: bool = False  # deployment.json `supersede`, else the template's Supersede
    approval: ApprovalSettings = ApprovalSettings()


class ParseUploadInput(S3ObjectCreatedEvent):
    pass


class ParseUploadOutput(Upload):
    pass


class UploadInput(_In):
    """Any step that only needs `upload`."""

    upload: Upload


class LockState(_Out):
    acquired: bool
    duplicate: bool = False
    owner: str
    lock_key: str  # lock#<endpoint>
    idempotency_key: str
    expires_at: int  # epoch seconds (DynamoDB TTL)
    taken_over_from: str | None = None  # the ended execution whose lock this one took (issue 12)
    takeover_reason: str | None = None
    # issue 12 §4: not at the head of the endpoint's upload queue yet (poll again after wait_seconds), or
    # superseded by a newer upload (superseded_by: its execution, key, event time)
    queued: bool = False
    superseded: bool = False
    position: int | None = None  # uploads ahead in the queue
    wait_seconds: int | None = None
    superseded_by: dict[str, Any] | None = None
    reason: str | None = None


class AcquireLockInput(UploadInput):
    execution_arn: str | None = None  # $$.Execution.Id: recorded in the lock, so a dead holder can be told apart

    @model_validator(mode="before")
    @classmethod
    def _execution_arn(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("execution_arn"):
            return data
        execution = data.get("execution")
        if isinstance(execution, dict) and isinstance(execution.get("Id"), str):
            return {**data, "execution_arn": execution["Id"]}
        if isinstance(execution, str) and execution.startswith("arn:"):
            return {**data, "execution_arn": execution}
        return data


class ReleaseLockInput(_In):
    """Runs on every path (also Catch paths): everything but the endpoint is optional."""

    upload: Upload | None = None
    lock: LockState | None = None


class ReleaseLockOutput(_Out):
    released: bool
    lock_key: str | None = None
    dequeued: bool = False  # the execution's ticket left the endpoint's upload queue
    reason: str = ""


# --------------------------------------------------------------------------------------------------------
# gate, model, endpoint_config, alarms
# --------------------------------------------------------------------------------------------------------


class BiasCheck(_Out):
    facet: str
    disparate_impact: float
    difference_in_positive_proportions: float
    passed: bool


class GateResult(_Out):
    passed: bool
    auc: float
    min_auc: float
    production_model: str | None = None
    production_auc: float | None = None
    max_auc_drop: float
    bias: list[BiasCheck] = []
    xgboost_version: str
    serving_framework_version: str | None = None
    reasons: list[str] = []


class QualityGateInput(UploadInput):
    pass


class PreFlightModel(_Out):
    """One model file the container would load (functions.steps.preflight_container)."""

    file: str
    format: Literal["pkl_format", "xgb_format"]
    num_features: int
    feature_names: list[str] | None = None


class PreFlightResult(_Out):
    """preflight: the artifact loaded and scored as the serving container would (or SKIPPED by deployment.json)."""

    status: Literal["PASSED", "SKIPPED", "REJECTED"]
    artifact: str
    version_id: str | None = None
    size: int | None = None  # bytes of model.tar.gz
    files: list[str] = []  # top-level entries of the extracted archive
    models: list[PreFlightModel] = []
    candidate_features: int | None = None
    production_model: str | None = None
    production_features: int | None = None
    golden_rows: int = 0
    max_relative_difference: float | None = None
    seconds: float | None = None
    reasons: list[str] = []
    notes: list[str] = []


class PreFlightInput(UploadInput):
    pass


class CreatedResource(_Out):
    name: str
    arn: str | None = None
    status: Literal["created", "existed"]


class ModelResource(CreatedResource):
    """The SageMaker Model, on the content-addressed copy of the exact bytes that passed the gate (issue 12 §5)."""

    model_data_url: str  # s3://<bucket>/deployed/<sha256>/model.tar.gz
    sha256: str


class EndpointConfigResource(CreatedResource):
    variant: str  # its production variant name: the live endpoint's (blue/green updates keep one name)
    # the config the endpoint served when this one was made (the old fleet of the update; None: no endpoint)
    live_config: str | None = None


class CreateModelInput(UploadInput):
    pass


class CreateEndpointConfigInput(UploadInput):
    model: ModelResource | CreatedResource | None = None


class AlarmsState(_Out):
    error_alarm: str
    latency_alarm: str
    verdict_alarm: str | None = None  # on Guardrail/CanaryVerdict Regression, set by check_deployment
    # metric math: the new fleet's Invocation4XXErrors rate minus the old fleet's (issue 11 §2)
    client_error_alarm: str | None = None
    names: list[str]  # AutoRollbackConfiguration: scoped to the new fleet (EndpointConfigName)
    # The post-deployment watch's alarms on {EndpointName, VariantName} (aws-audit #11): after the shift only the
    # new fleet serves the variant; never rollback alarms (during the update they also see the old fleet).
    watch_names: list[str] = []
    created: list[str] = []  # put_metric_alarm is an upsert: names whose definition was absent before
    existed: list[str] = []


class EnsureAlarmsInput(UploadInput):
    endpoint_config: EndpointConfigResource | None = None  # its `variant` is the alarms' VariantName


# --------------------------------------------------------------------------------------------------------
# deployment (deploy, check_deployment), watch (post-deployment check / rollback)
# --------------------------------------------------------------------------------------------------------


class DeploymentState(_Out):
    mode: DeploymentMode
    endpoint_name: str
    target_config: str  # the new endpoint config
    previous_config: str | None = None  # serving config before the update (None on CREATE)
    previous_failure_reason: str | None = None  # FailureReason before the update (it survives updates)
    status: DeploymentStatus
    endpoint_status: str | None = None
    current_config: str | None = None  # EndpointConfigName from the latest DescribeEndpoint
    failure_reason: str | None = None
    alarms: dict[str, str] = {}  # alarm name -> OK | ALARM | INSUFFICIENT_DATA
    alarms_in_alarm: list[str] = []
    attempts: int = 0  # check_deployment polls so far
    # The poll budget (deploy.poll_budget): outlasts the MaximumExecutionTimeout sent plus SageMaker's rollback.
    poll_seconds: int = Field(default=30, ge=0)
    max_attempts: int = Field(default=120, ge=1)
    deployment_config: dict[str, Any] | None = None  # the DeploymentConfig sent (UPDATE)
    # The canary's sequential verdict (CANARY_VERDICT=msprt): which fleets, since when, and the latest verdict.
    previous_variant: str | None = None
    target_variant: str | None = None
    started_at: datetime | None = None  # UpdateEndpoint accepted
    succeeded_at: datetime | None = None  # first poll that saw the new config InService (the watch starts)
    canary_verdict: ShadowAnalysis | None = None


class DeployInput(UploadInput):
    alarms: AlarmsState | None = None


class DeploymentEvidence(_Out):
    """How many requests each fleet served from UpdateEndpoint to the end of the watch (issue 11 §3)."""

    new_fleet_requests: int
    old_fleet_requests: int | None = None  # None: no old fleet (first deployment)
    min_requests: int
    policy: Literal["rollback", "extend", "accept"]
    since: datetime
    until: datetime
    sufficient: bool


class WatchState(_Out):
    alarms: dict[str, str] = {}
    alarms_in_alarm: list[str] = []
    alarm: bool  # True when a guardrail alarm fired after the deployment finished
    # went to ALARM at some point of the watch window (DescribeAlarmHistory), even if OK again at its end
    fired_during_watch: list[str] = []
    missing_alarms: list[str] = []  # deleted during the deployment: counted as firing (issue 12 §3)
    # the endpoint no longer serves the deployed config (someone else changed it during the watch, issue 12 §6)
    changed_externally: bool = False
    serving_config: str | None = None  # what the endpoint served at the end of the watch
    rolled_back: bool = False
    rollback_config: str | None = None  # config the endpoint was sent back to
    settled: bool = False  # the endpoint is InService on rollback_config again (the rollback is done)
    endpoint_status: str | None = None
    rollback_polls: int = 0  # Rollback invocations after the first (the ASL bounds them)
    evidence: DeploymentEvidence | None = None
    # OK | ROLLBACK (too few requests, policy rollback or extensions used up) | EXTEND (watch again) |
    # ACCEPT (policy accept: DEPLOYED_UNVERIFIED)
    evidence_action: Literal["OK", "ROLLBACK", "EXTEND", "ACCEPT"] = "OK"
    extensions: int = 0  # watch windows added for lack of evidence


class CheckDeploymentInput(UploadInput):
    """While `deployment.status` is IN_PROGRESS this polls the deployment and writes `deployment`;
    once it is SUCCEEDED the same function is the post-deployment watch and writes `watch`."""

    alarms: AlarmsState | None = None
    deployment: DeploymentState
    watch: WatchState | None = None  # the previous watch window's (its `extensions`)


class RollbackInput(UploadInput):
    alarms: AlarmsState | None = None
    deployment: DeploymentState
    watch: WatchState | None = None


# --------------------------------------------------------------------------------------------------------
# shadow test
# --------------------------------------------------------------------------------------------------------


class VariantStats(_Out):
    variant: str
    invocations: float = 0  # SampleCount of Invocation5XXErrors (one datapoint per request)
    errors_5xx: float = 0  # Sum of Invocation5XXErrors
    error_rate: float | None = None
    latency_avg_us: float | None = None
    latency_p99_us: float | None = None


class ShadowAnalysis(_Out):
    verdict: Verdict
    reasons: list[str] = []
    production: VariantStats
    shadow: VariantStats
    method: str = "cloudwatch-thresholds"
    decisive: bool = False  # a sequential test may end the experiment before its scheduled end
    details: dict[str, Any] = {}  # extra evidence (e.g. a sequential test's statistics)


class ShadowState(_Out):
    status: Literal["SKIPPED", "RUNNING", "ENDED", "CONCLUDED"]
    skipped_reason: str | None = None
    experiment_name: str
    experiment_arn: str | None = None
    experiment_status: str | None = None  # DescribeInferenceExperiment Status
    endpoint_name: str
    production_variant: str | None = None
    production_model: str | None = None
    shadow_variant: str
    shadow_model: str
    sampling_percent: int
    starts_at: str | None = None  # ISO 8601
    ends_at: str | None = None
    done: bool = False  # the analysis is final: conclude now
    verdict: Verdict | None = None
    analysis: ShadowAnalysis | None = None
    attempts: int = 0
    actions: dict[str, str] | None = None  # ModelVariantActions sent by conclude
    settled: bool = False  # concluded, the experiment ended and the endpoint is InService again
    stop_polls: int = 0  # ConcludeShadowTest invocations after the one that stopped the experiment
    # The sequential verdict (SHADOW_METHOD=msprt): first wait, the policy in force, where evidence lives.
    poll_seconds: int | None = None  # Wait before the first check (the whole window for "thresholds")
    method: str | None = None
    policy: dict[str, Any] | None = None  # functions.stats.verdict.VerdictPolicy
    capture_uri: str | None = None  # the experiment's DataStorageConfig destination
    ground_truth_uri: str | None = None
    evaluation_uri: str | None = None  # the shadow model's evaluation.json (baseline, threshold, bias)
    production_evaluation_uri: str | None = None  # production's, beside its deployed artifact (its own threshold)
    plan: dict[str, Any] | None = None  # functions.stats.plan.Plan from production's traffic before the start


class ShadowAbort(_Out):
    """abort_shadow_test: the experiment stopped after a failure (shadow Removed, production Retained)."""

    experiment_name: str
    experiment_status: str | None = None  # before the stop; None when there was no experiment
    stopped: bool = False
    actions: dict[str, str] | None = None
    reason: str | None = None


class AbortShadowTestInput(UploadInput):
    error: dict[str, Any] | None = None  # the Catch's {Error, Cause}


class ApprovalDecision(_Out):
    """`$.approval`: who decided and why. `guardrail approve` sends it as SendTaskSuccess's output; a rejection
    (SendTaskFailure ApprovalRejected) and a timeout are written by the state machine as {decision, error, cause},
    `cause` being the rejecting CLI's JSON (decided_by, reason, decided_at) or Step Functions' own text."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    decision: Literal["APPROVED", "REJECTED"]
    kind: str | None = None  # promote | update
    decided_by: str | None = None  # STS GetCallerIdentity Arn of the operator; "timeout" for the default
    reason: str | None = None
    decided_at: str | None = None
    error: str | None = None  # ApprovalRejected | States.Timeout (reject / timeout paths)
    cause: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_catch(cls, data: Any) -> Any:
        # A Catch writes {"Error", "Cause"} at $.approval: a rejection or a timeout, never an approval.
        if isinstance(data, dict) and "Error" in data and "decision" not in data:
            return {"decision": "REJECTED", "error": data.get("Error"), "cause": data.get("Cause")}
        return data

    @model_validator(mode="after")
    def _from_cause(self) -> ApprovalDecision:
        # The rejecting CLI's cause is JSON: lift who and why out of it (any other text stays the reason).
        if self.cause and not self.decided_by:
            try:
                parsed = json.loads(self.cause)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                self.decided_by = parsed.get("decided_by")
                self.reason = self.reason or parsed.get("reason")
                self.decided_at = self.decided_at or parsed.get("decided_at")
                self.kind = self.kind or parsed.get("kind")
            elif self.reason is None:
                self.reason = self.cause
        if self.error == "States.Timeout" and not self.decided_by:
            self.decided_by = "timeout"
        return self


class ApprovalInput(_In):
    """The Payload of the approval task (`lambda:invoke.waitForTaskToken`): the token and the whole document."""

    token: str = Field(min_length=1)
    kind: Literal["promote", "update"]
    snapshot: dict[str, Any]  # the execution document at the gate (not `document`: _runtime.unwrap takes that)


class ApprovalRequested(_Out):
    """What `request_approval` wrote and sent (the state machine ignores it: it waits for the token)."""

    execution: str
    kind: str
    key: str  # approval#<execution> in the lock table
    message_id: str
    expires_at: int


class StartShadowTestInput(UploadInput):
    model: ModelResource | CreatedResource | None = None


class CheckShadowTestInput(UploadInput):
    shadow: ShadowState


class ConcludeShadowTestInput(UploadInput):
    shadow: ShadowState


# --------------------------------------------------------------------------------------------------------
# data_check (drift + data quality of the endpoint's captured traffic): after the watch and on a schedule
# --------------------------------------------------------------------------------------------------------


class CheckDataInput(_In):
    """The execution document after the post-deployment watch, or a scheduled event (no `upload`)."""

    upload: Upload | None = None


class DataCheckState(_Out):
    status: Literal["OK", "BREACH", "NO_DATA", "SKIPPED"]
    flags: list[Literal["DRIFT", "DATA_QUALITY"]] = []
    endpoint_name: str
    variant: str | None = None
    model: str | None = None
    window_start: str | None = None  # ISO 8601
    window_end: str | None = None
    requests: int = 0
    rows: int = 0
    top_features: list[str] = []  # most drifted first
    drift: dict[str, Any] | None = None  # functions.stats.drift.DriftReport (compact)
    data_quality: dict[str, Any] | None = None  # functions.stats.data_quality.DataQualityReport
    notifications: list[str] = []  # SNS message ids (one per flag)
    explanation: str = ""


# --------------------------------------------------------------------------------------------------------
# notify
# --------------------------------------------------------------------------------------------------------


class ErrorInfo(BaseModel):
    """What a Catch writes at `$.error`; `Cause` of a Lambda error is a JSON string with errorMessage."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)
    error: str = Field(default="Unknown", alias="Error")
    cause: str = Field(default="", alias="Cause")

    @property
    def message(self) -> str:
        try:
            parsed = json.loads(self.cause)
        except (TypeError, ValueError):
            return self.cause
        if isinstance(parsed, dict):
            return str(parsed.get("errorMessage") or parsed.get("Cause") or self.cause)
        return self.cause


class NotifyInput(_In):
    """Lenient on purpose: notify runs on Catch paths with partial documents and must never fail."""

    outcome: str = "FAILED"
    upload: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None
    watch: dict[str, Any] | None = None
    shadow: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    detail: dict[str, Any] | None = None  # the trigger event's detail, when parse_upload never ran
    ended: dict[str, Any] | None = None  # ExecutionEnded: the lock, shadow and endpoint after the execution ended
    execution_arn: str | None = None  # $$.Execution.Id (`execution` keeps the name)
    approval: Any = None  # ApprovalDecision (who approved or rejected, and why); Any: notify never fails on it
    housekeeping: dict[str, Any] | None = None  # what Housekeeping deleted (issue 14 §6)
    housekeeping_error: ErrorInfo | None = None  # Housekeeping failed: reported, the outcome stands

    @model_validator(mode="before")
    @classmethod
    def _tolerate(cls, data: Any) -> Any:
        # Drop keys of the wrong type instead of failing: a half-written document still gets a message.
        if not isinstance(data, dict):
            return {}
        out = dict(data)
        for key in ("upload", "gate", "deployment", "watch", "shadow", "detail", "ended", "housekeeping"):
            if key in out and not isinstance(out[key], dict):
                out.pop(key)
        if "error" in out and not isinstance(out["error"], dict):
            out["error"] = {"Error": "Unknown", "Cause": str(out["error"])}
        if "housekeeping_error" in out and not isinstance(out["housekeeping_error"], dict):
            out.pop("housekeeping_error")
        if not isinstance(out.get("outcome", "FAILED"), str):
            out["outcome"] = "FAILED"
        if "execution" in out and not isinstance(out["execution"], str | dict):
            out.pop("execution")
        raw = out.get("execution")
        arn = raw.get("Id") if isinstance(raw, dict) else raw  # $$.Execution.Id: alerts carry the whole ARN
        if isinstance(arn, str) and arn.startswith("arn:") and not out.get("execution_arn"):
            out["execution_arn"] = arn
        return out


class ExecutionStatusChangeDetail(BaseModel):
    """`detail` of a Step Functions "Execution Status Change" event (DescribeExecution's fields)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    executionArn: str = Field(min_length=1)
    stateMachineArn: str | None = None
    name: str = Field(min_length=1)
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]
    input: str | None = None  # the execution's input as a JSON string (the S3 "Object Created" event)
    error: str | None = None
    cause: str | None = None


class ExecutionEndedInput(BaseModel):
    """The EventBridge event the ExecutionEnded rule delivers (issue 12 §2)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)
    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionStatusChangeDetail


class ExecutionEndedOutput(_Out):
    execution: str
    status: str
    released: bool  # this execution's lock was still held and is released now
    dequeued: bool = False  # its ticket left the endpoint's upload queue (issue 12 §4)
    shadow: dict[str, Any] | None = None  # what AbortShadowTest-like stopping did (None: no shadow test known)
    endpoint: dict[str, Any]  # status, serving config, pending config, what happens next
    notified: str | None = None  # the message id; None when the execution had already notified this outcome
    notify_skipped: str | None = None


class NotificationPayload(_Out):
    """The JSON part of the SNS message (also in the text body)."""

    outcome: str
    endpoint: str
    model: str  # <name>/<version> or "unknown"
    execution: str | None = None
    execution_arn: str | None = None
    console_url: str | None = None  # the execution in the Step Functions console (on AWS only)
    artifact: str | None = None
    summary: str
    error: str | None = None  # the Step Functions error name (FAILED)
    cause: str | None = None
    details: dict[str, Any] = {}
    timestamp: str


class NotifyOutput(_Out):
    message_id: str
    outcome: str
    duplicate: bool = False  # already published for this execution and outcome (a retried invocation)
    subject: str
    payload: NotificationPayload


class HousekeepingInput(_In):
    """After a DEPLOYED / DEPLOYED_UNVERIFIED / PROMOTED outcome: what this execution made and replaced."""

    outcome: str
    upload: Upload
    lock: LockState | None = None
    endpoint_config: EndpointConfigResource | None = None  # its live_config: the config served before
    deployment: DeploymentState | None = None  # previous_config: the rollback target of an update


class HousekeepingOutput(_Out):
    """What housekeeping deleted and kept (issue 14 §6); `skipped` says why it touched nothing."""

    skipped: str | None = None
    keep_versions: int
    serving_config: str | None = None
    kept_configs: list[str] = []  # Guardrail's configs still there: serving, rollback target, newest others
    deleted_alarms: list[str] = []
    deleted_configs: list[str] = []
    deleted_models: list[str] = []
    errors: list[str] = []  # deletions that failed (the rest went on; the deployment stands)
