"""Run the scenarios of the scenario table (README.md "Demo", `guardrail/scenarios.py`) against a deployed Guardrail (the local cloud or AWS) and check each one.

`Target` says where (bucket, state machine, endpoint, how to make clients); `run_scenario` stages and
triggers one scenario, sends traffic while it runs, waits for the execution, then checks the outcome, the
path, the alarms, the notification and which model serves afterwards. `run_demo` is `guardrail demo`:
train or reuse the models, start the local cloud, run every scenario with a live view, print a summary,
write one HTML report per execution.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from guardrail import scenarios
from guardrail.scenarios import Scenario
from guardrail.traffic import HeldOut, RequestRecord, TrafficConfig, TrafficReplayer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def aws_client(profile: str | None = None, region: str | None = None) -> Callable[[str], Any]:
    """`client(service)` for AWS through the usual chain, with a named profile and region as the AWS CLI's."""
    if profile is None and region is None:
        return boto3.client
    session = boto3.session.Session(profile_name=profile, region_name=region)
    return session.client


class DemoError(RuntimeError):
    """The demo cannot run (no models, no local cloud, stack outputs missing...)."""


# ---------------------------------------------------------------- where the scenarios run


def _pick(outputs: dict[str, str], *needles: str) -> str | None:
    """The first output whose key contains one of `needles` (in order of preference)."""
    for needle in needles:
        for key, value in outputs.items():
            if needle.lower() in key.lower() and value:
                return value
    return None


class Target(BaseModel):
    """A deployed Guardrail: the names the scenarios need and how to reach its services."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    state_machine_arn: str
    endpoint_name: str
    model_prefix: str = "models/"
    topic_arn: str | None = None
    alert_queue_url: str | None = None
    env: dict[str, str] | None = None  # local cloud variables; None: AWS through the default chain
    aws_profile: str | None = None  # with env None: the named profile and region (`--profile`, `--region`)
    aws_region: str | None = None

    def client(self, service: str) -> Any:
        if self.env is None:
            return aws_client(self.aws_profile, self.aws_region)(service)
        from local.env import client

        return client(service, self.env)

    @classmethod
    def from_outputs(
        cls, outputs: dict[str, str], state_machines: dict[str, str] | None = None,
        env: dict[str, str] | None = None, alert_queue_url: str | None = None,
    ) -> Target:
        bucket = _pick(outputs, "ModelBucketName", "ModelBucket", "BucketName", "Bucket")
        machine = _pick(outputs, "StateMachineArn", "StateMachine") or next(iter((state_machines or {}).values()), None)
        endpoint = _pick(outputs, "EndpointName", "Endpoint")
        missing = [n for n, v in (("bucket", bucket), ("state machine", machine), ("endpoint", endpoint)) if not v]
        if missing:
            raise DemoError(f"stack outputs lack the {', '.join(missing)}: {sorted(outputs)}")
        return cls(
            bucket=bucket, state_machine_arn=machine, endpoint_name=endpoint,  # type: ignore[arg-type]
            model_prefix=_pick(outputs, "ModelPrefix") or "models/", topic_arn=_pick(outputs, "TopicArn", "Topic"),
            env=env, alert_queue_url=alert_queue_url,
        )

    @classmethod
    def local(cls, workdir: Path | str = ".guardrail") -> Target:
        """The local cloud running from `workdir` (`guardrail up` / `LocalCloud.spawn`)."""
        from local.env import load_state

        state = load_state(workdir)
        return cls.from_outputs(state.outputs, state.state_machines, state.env, state.alert_queue_url)

    @classmethod
    def aws(cls, stack_name: str, profile: str | None = None, region: str | None = None) -> Target:
        """A stack deployed with `sam deploy` on AWS (credentials and region from the usual chain, or the named
        profile and region)."""
        stacks = aws_client(profile, region)("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return cls.from_outputs(outputs).model_copy(update={"aws_profile": profile, "aws_region": region})


# ---------------------------------------------------------------- observing


class FleetView(BaseModel):
    """One fleet of the endpoint as DescribeEndpoint shows it: the live config's variant(s), the pending config's
    (the green fleet of a blue/green update) or a shadow, with the share of requests SageMaker routes to it."""

    role: Literal["live", "new", "shadow"]
    config: str | None = None
    variant: str
    model: str | None = None
    weight: float = 0.0  # CurrentWeight
    instances: tuple[int, int] | None = None  # (CurrentInstanceCount, DesiredInstanceCount)
    status: str | None = None  # the green variant's VariantStatus (Creating, ActivatingTraffic, Baking...)
    share: float | None = None  # fraction of the endpoint's requests it serves (None: a shadow, it gets copies)
    rps: float | None = None  # requests/s, from its Invocations series (None: not known yet)


class EndpointView(BaseModel):
    status: str | None = None
    config: str | None = None
    pending_config: str | None = None
    failure_reason: str | None = None
    # fleet -> current weight (blue and, while updating, green), a fleet named by its model (and config): both
    # fleets of a blue/green update share one production variant name, so the variant cannot tell them apart.
    weights: dict[str, float] = {}
    shadow: list[str] = []
    fleets: list[FleetView] = []


_CONFIGS: dict[str, dict[str, Any]] = {}  # endpoint config -> DescribeEndpointConfig (configs are immutable)


def _config(sm: Any, config: str | None) -> dict[str, Any]:
    if not config:
        return {}
    if config not in _CONFIGS:
        try:
            _CONFIGS[config] = sm.describe_endpoint_config(EndpointConfigName=config)
        except ClientError:
            return {}
    return _CONFIGS[config]


def models_of(sm: Any, config: str | None) -> dict[str, str]:
    """{variant name: model name} of an endpoint config (production and shadow variants)."""
    described = _config(sm, config)
    variants = described.get("ProductionVariants", []) + described.get("ShadowProductionVariants", [])
    return {v["VariantName"]: v["ModelName"] for v in variants}


def publish_period(sm: Any, config: str | None) -> int:
    """Seconds between the invocation-metric datapoints of a config's fleet: 60, or MetricsConfig's frequency with
    enhanced metrics (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_MetricsConfig.html)."""
    metrics = _config(sm, config).get("MetricsConfig") or {}
    if metrics.get("EnableEnhancedMetrics") and metrics.get("MetricPublishFrequencyInSeconds"):
        return int(metrics["MetricPublishFrequencyInSeconds"])
    return 60


def serving_model(sm: Any, endpoint: str) -> str | None:
    """The model the endpoint's live config serves (its production variant)."""
    try:
        described = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError:
        return None
    variants = described.get("ProductionVariants") or [{}]
    return models_of(sm, described.get("EndpointConfigName")).get(variants[0].get("VariantName", ""))


# Green variant states in which its active instances take requests (the AWS canary notebook shows "Baking" with
# CurrentWeight 1.0 on the canary's instances; "Creating" launches instances that serve nobody yet).
TRAFFIC_ON = {"ActivatingTraffic", "Baking"}


def _green_fraction(pending: list[dict[str, Any]], live: list[dict[str, Any]] | None = None) -> float:
    """The share of requests the green fleet takes: its active capacity over its whole capacity. SageMaker shifts
    traffic by capacity ("routes a portion of the incoming traffic (for example, 25%) to the canary", the canary
    being "the portion of your green fleet that turns on to receive traffic",
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html), so during a
    canary both fleets' CurrentWeight is 1.0 and only the instance counts tell the split. AWS does not document
    the exact proportion; k of n instances taking k/n is what the local emulator applies. A rolling update (`live`
    given) replaces instances in place: the new batch serves beside the old instances still standing, so its share is
    new / (new + old) instances in service."""
    active = desired = 0
    for v in pending:
        status = ((v.get("VariantStatus") or [{}])[-1]).get("Status")
        on = status in TRAFFIC_ON if status else float(v.get("CurrentWeight", 0.0)) > 0
        if on and float(v.get("CurrentWeight", 0.0)) > 0:
            active += int(v.get("CurrentInstanceCount") or 0)
        desired += int(v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount") or 0)
    if live is not None:
        desired = active + sum(int(v.get("CurrentInstanceCount") or 0) for v in live)
    return min(1.0, active / desired) if desired else 0.0


def _fleet(sm: Any, role: str, config: str | None, variants: list[dict[str, Any]], fraction: float | None,
           ) -> list[FleetView]:
    models = models_of(sm, config)
    total = sum(max(float(v.get("CurrentWeight", 0.0)), 0.0) for v in variants)
    out = []
    for v in variants:
        weight = float(v.get("CurrentWeight", 0.0))
        share = None
        if fraction is not None:  # within a fleet, variants split its requests by weight
            share = fraction * (max(weight, 0.0) / total if total > 0 else 1 / len(variants))
        count = v.get("CurrentInstanceCount")
        out.append(FleetView(
            role=role, config=config, variant=v["VariantName"], model=models.get(v["VariantName"]), weight=weight,
            instances=(int(count), int(v.get("DesiredInstanceCount") or count)) if count is not None else None,
            status=((v.get("VariantStatus") or [{}])[-1]).get("Status"), share=share,
        ))
    return out


def endpoint_view(sm: Any, endpoint: str) -> EndpointView:
    try:
        ep = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError:
        return EndpointView()
    live = models_of(sm, ep.get("EndpointConfigName"))
    weights = {live.get(v["VariantName"], v["VariantName"]): float(v.get("CurrentWeight", 0.0))
               for v in ep.get("ProductionVariants", [])}
    pending = ep.get("PendingDeploymentSummary") or {}
    green = models_of(sm, pending.get("EndpointConfigName"))
    for v in pending.get("ProductionVariants", []):
        weights[green.get(v["VariantName"], v["VariantName"])] = float(v.get("CurrentWeight", 0.0))
    shadow = [v["VariantName"] for v in ep.get("ShadowProductionVariants", [])]
    shadow += [v["VariantName"] for v in pending.get("ShadowProductionVariants", [])]
    rolling = "RollingUpdatePolicy" in (ep.get("LastDeploymentConfig") or {})
    fraction = (_green_fraction(pending["ProductionVariants"], ep.get("ProductionVariants", []) if rolling else None)
                if pending.get("ProductionVariants") else 0.0)
    fleets = _fleet(sm, "live", ep.get("EndpointConfigName"), ep.get("ProductionVariants", []), 1.0 - fraction)
    if pending.get("ProductionVariants"):
        fleets += _fleet(sm, "new", pending.get("EndpointConfigName"), pending["ProductionVariants"], fraction)
    fleets += _fleet(sm, "shadow", ep.get("EndpointConfigName"), ep.get("ShadowProductionVariants", []), None)
    return EndpointView(
        status=ep.get("EndpointStatus"), config=ep.get("EndpointConfigName"),
        pending_config=pending.get("EndpointConfigName"), failure_reason=ep.get("FailureReason"),
        weights=weights, shadow=shadow, fleets=fleets,
    )


def fleet_rates(
    cw: Any, endpoint: str, fleets: list[FleetView], periods: dict[str, int], now: datetime | None = None,
) -> dict[str, float]:
    """Requests/s per production fleet (by config): the newest `Invocations` Sum SageMaker published for it
    (dimensions EndpointName, VariantName, EndpointConfigName: both fleets of an update share the variant name)
    over its publication period; 0 when it published nothing in the last three periods. One GetMetricData call."""
    now = now or datetime.now(UTC)
    queries, ids = [], {}
    for i, f in enumerate(x for x in fleets if x.role != "shadow" and x.config):
        period = periods.get(f.config or "", 60)
        qid = f"f{i}"
        ids[qid] = (f.config, period)
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": f.variant},
                {"Name": "EndpointConfigName", "Value": f.config}]
        queries.append({"Id": qid, "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations", "Dimensions": dims},
            "Period": period, "Stat": "Sum"}})
    if not queries:
        return {}
    longest = max(p for _, p in ids.values())
    rates: dict[str, float] = {config: 0.0 for config, _ in ids.values()}  # type: ignore[misc]
    with contextlib.suppress(ClientError):
        results = cw.get_metric_data(MetricDataQueries=queries, StartTime=now - timedelta(seconds=3 * longest),
                                     EndTime=now, ScanBy="TimestampDescending")["MetricDataResults"]
        for r in results:
            config, period = ids[r["Id"]]
            if r.get("Values"):
                newest = max(zip(r["Timestamps"], r["Values"], strict=True))
                rates[config] = rates.get(config, 0.0) + newest[1] / period  # type: ignore[index]
    return rates


class FleetRates:
    """`fleet_rates` at most every `every` seconds (the view ticks twice a second; datapoints come every 10-60 s)."""

    def __init__(self, cw: Any, sm: Any, endpoint: str, every: float = 2.0) -> None:
        self.cw, self.sm, self.endpoint, self.every = cw, sm, endpoint, every
        self._at, self._rates = -1e9, {}  # type: ignore[var-annotated]

    def fill(self, view: EndpointView) -> EndpointView:
        if time.monotonic() - self._at >= self.every:
            self._at = time.monotonic()
            periods = {f.config: publish_period(self.sm, f.config) for f in view.fleets if f.config}
            self._rates = fleet_rates(self.cw, self.endpoint, view.fleets, periods)
        fleets = [f.model_copy(update={"rps": self._rates.get(f.config or "")}) if f.role != "shadow" else f
                  for f in view.fleets]
        return view.model_copy(update={"fleets": fleets})


def settle(sm: Any, endpoint: str, timeout: float = 30.0) -> EndpointView:
    """The endpoint once it is no longer Creating/Updating (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    view = endpoint_view(sm, endpoint)
    while view.status in ("Creating", "Updating", "SystemUpdating", "RollingBack") and time.monotonic() < deadline:
        time.sleep(0.5)
        view = endpoint_view(sm, endpoint)
    return view


def alarm_states(cw: Any, endpoint: str) -> dict[str, str]:
    """State of every alarm that watches the endpoint: a metric alarm on its dimensions, or a metric-math alarm
    (the relative 4XX alarm) with a metric on them."""
    states: dict[str, str] = {}
    for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            dimension_sets = [alarm.get("Dimensions", [])] + [
                ((m.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions", []) for m in alarm.get("Metrics", [])
            ]
            if any({d["Name"]: d["Value"] for d in dims}.get("EndpointName") == endpoint for dims in dimension_sets):
                states[alarm["AlarmName"]] = alarm["StateValue"]
    return states


def configs_in_play(view: EndpointView, targets: list[str]) -> list[str]:
    """The configs whose alarms the live view lists: the live one, the pending one, and every config this scenario
    deployed (a green fleet rolled back a moment ago keeps the alarm that fired). A config an update retired is
    left out: its alarms watched it as the new fleet of an older update."""
    out: list[str] = []
    for config in (view.config, view.pending_config, *targets):
        if config and config not in out:
            out.append(config)
    return out


def alarms_in_play(alarms: dict[str, str], configs: Iterable[str | None]) -> dict[str, str]:
    """The alarms of the given endpoint configs: Guardrail's alarm names carry their config
    (guardrail-<endpoint>-<config>-<what>, functions/steps/names.py); alarms of retired configs are left out."""
    wanted = [c for c in configs if c]
    return {name: state for name, state in alarms.items() if any(f"-{c}-" in f"{name}-" for c in wanted)}


def current_state(sfn: Any, execution_arn: str) -> str | None:
    """The state the execution is in now (the last one entered)."""
    from guardrail.report import _history

    for event in reversed(_history(sfn, execution_arn)):  # moto ignores reverseOrder
        details = event.get("stateEnteredEventDetails")
        if details:
            return details["name"]
    return None


def execution_path(sfn: Any, execution_arn: str) -> list[str]:
    from guardrail.report import _history, parse_history

    return [v.name for v in parse_history(_history(sfn, execution_arn))]


def find_execution(sfn: Any, machine: str, key: str, since: datetime, timeout: float) -> str:
    """The execution started (after `since`) for the upload of `key`: the document's root is the S3 event."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
            for ex in page["executions"]:
                arn = ex["executionArn"]
                if arn in seen or ex["startDate"].astimezone(UTC) < since - timedelta(seconds=2):
                    continue
                seen.add(arn)
                doc = json.loads(sfn.describe_execution(executionArn=arn).get("input") or "{}")
                if ((doc.get("detail") or {}).get("object") or {}).get("key") == key:
                    return arn
        time.sleep(0.25)
    raise TimeoutError(f"no execution started for s3 key {key} within {timeout:.0f} s")


def final_document(sfn: Any, execution_arn: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(describe_execution, the last document: the output, or for a FAILED execution the last state output)."""
    from guardrail.report import _history, parse_history

    ex = sfn.describe_execution(executionArn=execution_arn)
    if ex.get("output"):
        return ex, json.loads(ex["output"])
    visits = parse_history(_history(sfn, execution_arn))
    return ex, next((v.output for v in reversed(visits) if v.output), {})


def wait_for(sfn: Any, execution_arn: str, timeout: float = 300.0) -> dict[str, Any]:
    """Wait for the execution to end; returns its last document."""
    deadline = time.monotonic() + timeout
    while sfn.describe_execution(executionArn=execution_arn)["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still running after {timeout:.0f} s")
        time.sleep(0.5)
    return final_document(sfn, execution_arn)[1]


# ---------------------------------------------------------------- traffic


class Traffic:
    """Held-out rows sent at a rate by `guardrail.traffic.TrafficReplayer` in the background, counted by the
    variant that answered and by error code. The variant does NOT tell model versions apart (both fleets of a
    blue/green update share it): per model, see `fleet_traffic` and `serving_model`."""

    def __init__(self, target: Target, data: HeldOut, rps: float = 0.0, count: int | None = None) -> None:
        self.variants: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._replayer: TrafficReplayer | None = None
        if rps > 0:
            # Stopped by the scenario when its execution ends; the duration only bounds a forgotten replay.
            # Shuffled: holdout.csv is in time order, and a slice of it looks like drift to the data checks.
            config = TrafficConfig(endpoint_name=target.endpoint_name, rate=rps, count=count, shuffle=True,
                                   duration=None if count else 3600, read_timeout=10)
            client = None
            if target.env is not None:  # the local cloud: explicit endpoint and fake credentials
                from local.env import client as local_client

                client = local_client("sagemaker-runtime", target.env, retries={"total_max_attempts": 1},
                                      max_pool_connections=config.workers + 2, read_timeout=10)
            self._replayer = TrafficReplayer(config, data, client=client, on_record=self._record)

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            if record.status == "ok":
                self.variants[record.variant or "?"] += 1
            else:
                self.errors[record.status] += 1

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.variants), dict(self.errors)

    def run(self) -> Traffic:
        """Send `count` requests now (the probe after an execution)."""
        if self._replayer is not None:
            self._replayer.run()
        return self

    def __enter__(self) -> Traffic:
        if self._replayer is not None:
            self._replayer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._replayer is not None:
            self._replayer.__exit__(*exc)


def holdout_path(models_dir: Path) -> Path:
    """Training writes the prepared data beside the models folder (`<out>/../data/<dataset>/holdout.csv`)."""
    for path in (models_dir / "holdout.csv", models_dir.parent / "data" / "bank-marketing" / "holdout.csv"):
        if path.is_file():
            return path
    return models_dir.parent / "data" / "bank-marketing" / "holdout.csv"


def holdout(models_dir: Path) -> HeldOut:
    """The held-out rows training set aside (label first), for traffic."""
    path = holdout_path(models_dir)
    if not path.is_file():
        raise DemoError(f"{path} missing: train first (`guardrail train --out {models_dir} --scenarios`)")
    return HeldOut.from_csv(path)


# ---------------------------------------------------------------- one scenario


class Snapshot(BaseModel):
    """What the live view shows while a scenario runs."""

    scenario: str
    elapsed: float
    execution_arn: str | None = None
    state: str | None = None
    endpoint: EndpointView = Field(default_factory=EndpointView)
    traffic: dict[str, int] = {}  # answers the traffic generator got, by the variant that answered
    traffic_errors: dict[str, int] = {}
    alarms: dict[str, str] = {}  # every alarm on the endpoint; the view lists those of `in_play`
    in_play: list[str] = []  # configs_in_play: the live and pending configs, and what this scenario deployed


class ScenarioResult(BaseModel):
    key: str
    title: str
    expected: str
    actual: str | None = None
    error: str | None = None  # Step Functions error name behind FAILED
    cause: str | None = None
    seconds: float = 0.0
    execution_arn: str | None = None
    path: list[str] = []
    traffic: dict[str, int] = {}
    traffic_errors: dict[str, int] = {}
    alarms_fired: list[str] = []
    alert_subject: str | None = None
    alert_outcome: str | None = None
    alert_summary: str | None = None
    endpoint_config_before: str | None = None
    endpoint_config_after: str | None = None
    serving_before: str | None = None  # the live config's model when the scenario started (None: no endpoint)
    setup_for: str | None = None  # run first because this selected scenario needs an endpoint (`demo --only`)
    serving_after: dict[str, int] = {}  # model -> answers to probe requests after the execution
    report: str | None = None
    problems: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.problems


def _trigger(target: Target, scenario: Scenario, models_dir: Path) -> tuple[str, str | None]:
    """Stage and trigger; returns (s3 key the execution is about, execution ARN when started directly)."""
    s3, sfn = target.client("s3"), target.client("stepfunctions")
    if scenario.trigger == "execution":
        event = scenarios.malformed_event(target.bucket)
        name = f"{scenario.key}-{int(time.time() * 1000)}"[:80]
        arn = sfn.start_execution(stateMachineArn=target.state_machine_arn, name=name, input=json.dumps(event))
        return event["detail"]["object"]["key"], arn["executionArn"]
    head = scenarios.stage(s3, target.bucket, scenario, models_dir, target.model_prefix)
    return head["key"], None


def fleet_traffic(
    cw: Any, sm: Any, endpoint: str, configs: set[str], since: datetime, until: datetime
) -> dict[str, int]:
    """Requests each model answered in the window, from the `Invocations` series SageMaker publishes per fleet
    (dimensions EndpointName, VariantName, EndpointConfigName): both fleets share the variant name."""
    out: Counter[str] = Counter()
    for config in sorted(configs):
        for variant, model in models_of(sm, config).items():
            dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant},
                    {"Name": "EndpointConfigName", "Value": config}]
            with contextlib.suppress(ClientError):
                points = cw.get_metric_statistics(
                    Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims, Statistics=["Sum"],
                    StartTime=since - timedelta(minutes=1), EndTime=until + timedelta(minutes=1), Period=60,
                )["Datapoints"]
                out[model] += int(sum(p["Sum"] for p in points))
    return {model: n for model, n in out.items() if n}


def _alarms_fired(cw: Any, names: list[str], since: datetime) -> list[str]:
    fired = []
    for name in names:
        with contextlib.suppress(ClientError):
            items = cw.describe_alarm_history(
                AlarmName=name, HistoryItemType="StateUpdate", StartDate=since, EndDate=datetime.now(UTC)
            )["AlarmHistoryItems"]
            if any(json.loads(i["HistoryData"]).get("newState", {}).get("stateValue") == "ALARM" for i in items):
                fired.append(name)
    return fired


def _expected_alarm_name(doc: dict[str, Any], which: str) -> str | None:
    return (doc.get("alarms") or {}).get(f"{which}_alarm")


def check(result: ScenarioResult, scenario: Scenario, doc: dict[str, Any]) -> list[str]:
    """Everything that differs from what the scenario table promises."""
    problems = []
    if result.actual != scenario.expected:
        cause = (result.cause or "")[:300]
        problems.append(f"outcome {result.actual} (expected {scenario.expected}; {result.error}: {cause})")
    if scenario.expected_error and result.error != scenario.expected_error:
        problems.append(f"error {result.error} (expected {scenario.expected_error})")
    if result.alert_outcome != scenario.expected:
        problems.append(f"notification {result.alert_outcome or 'missing'} (expected {scenario.expected})")
    elif scenario.expected_reason and scenario.expected_reason not in (result.alert_summary or ""):
        problems.append(f"notification reason: {result.alert_summary!r} "
                        f"(expected it to say {scenario.expected_reason!r})")
    if scenario.alarm:
        name = _expected_alarm_name(doc, scenario.alarm)
        if name not in result.alarms_fired:
            problems.append(f"{scenario.alarm} alarm {name} never went to ALARM (fired: {result.alarms_fired})")
    elif result.alarms_fired and scenario.expected in ("DEPLOYED", "PROMOTED"):
        problems.append(f"unexpected alarms: {result.alarms_fired}")
    if not scenario.endpoint_changes and result.endpoint_config_after != result.endpoint_config_before:
        problems.append(f"endpoint config changed {result.endpoint_config_before} -> {result.endpoint_config_after}")
    if scenario.serves_after:
        # An endpoint-changing scenario serves its own model; any other leaves the model that served before it
        # (the table's `serves_after` when the whole table ran in order; whatever ran before in a subset).
        wanted = scenarios.model_name(scenario.serves_after) if scenario.endpoint_changes else result.serving_before
        if wanted is None and result.serving_after:
            problems.append(f"serving {result.serving_after} afterwards (expected no endpoint, as before)")
        elif wanted is not None and set(result.serving_after) != {wanted}:
            problems.append(f"serving {result.serving_after or 'nothing'} afterwards (expected only {wanted})")
    return problems


def run_scenario(
    target: Target, scenario: Scenario, models_dir: Path, data: HeldOut,
    on_tick: Callable[[Snapshot], None] | None = None, probe_requests: int = 10, alerts: Any = None,
) -> ScenarioResult:
    """Stage, trigger, drive traffic, wait, and check one scenario."""
    sfn, sm, cw = target.client("stepfunctions"), target.client("sagemaker"), target.client("cloudwatch")
    result = ScenarioResult(key=scenario.key, title=scenario.title, expected=scenario.expected)
    started = time.monotonic()
    since = datetime.now(UTC)
    result.endpoint_config_before = endpoint_view(sm, target.endpoint_name).config
    result.serving_before = serving_model(sm, target.endpoint_name)
    key, arn = _trigger(target, scenario, models_dir)
    with Traffic(target, data, scenario.traffic_rps) as traffic:
        arn = arn or find_execution(sfn, target.state_machine_arn, key, since, timeout=30)
        result.execution_arn = arn
        deadline = started + scenario.timeout_seconds
        rates = FleetRates(cw, sm, target.endpoint_name)
        targets: list[str] = []  # the configs this scenario deployed (pending at some tick)
        while True:
            status = sfn.describe_execution(executionArn=arn)["status"]
            if on_tick is not None:
                view = rates.fill(endpoint_view(sm, target.endpoint_name))
                if view.pending_config and view.pending_config not in targets:
                    targets.append(view.pending_config)
                answered, errors = traffic.counts()
                on_tick(Snapshot(
                    scenario=scenario.key, elapsed=time.monotonic() - started, execution_arn=arn,
                    state=current_state(sfn, arn), endpoint=view, traffic=answered, traffic_errors=errors,
                    alarms=alarm_states(cw, target.endpoint_name), in_play=configs_in_play(view, targets),
                ))
            if status in TERMINAL:
                break
            if time.monotonic() > deadline:
                sfn.stop_execution(executionArn=arn, error="DemoTimeout", cause="scenario took too long")
                result.problems.append(f"execution still running after {scenario.timeout_seconds:.0f} s: stopped")
                break
            time.sleep(0.5)
    result.seconds = time.monotonic() - started
    result.traffic, result.traffic_errors = traffic.counts()
    _, doc = final_document(sfn, arn)
    result.actual = doc.get("outcome")
    error = doc.get("error") or {}
    result.error, result.cause = error.get("Error"), error.get("Cause")
    result.path = execution_path(sfn, arn)
    alarm_names = (doc.get("alarms") or {}).get("names") or []
    result.alarms_fired = _alarms_fired(cw, alarm_names, since)
    if alerts is not None:
        execution_name = arn.rsplit(":", 1)[-1]
        with contextlib.suppress(TimeoutError):
            alert = alerts.wait_for(lambda a: (a.payload or {}).get("execution") == execution_name, timeout=15)
            result.alert_subject, result.alert_outcome = alert.subject, alert.outcome
            result.alert_summary = (alert.payload or {}).get("summary")
    # A promotion's endpoint update may still be finishing when the execution ends: let it settle first.
    after = settle(sm, target.endpoint_name)
    result.endpoint_config_after = after.config
    if after.status not in (None, "InService"):
        result.problems.append(f"endpoint {after.status} 30 s after the execution ended")
    if scenario.serves_after:
        # After settling one fleet serves: its answers belong to the live config's model.
        answers = sum(Traffic(target, data, rps=50, count=probe_requests).run().counts()[0].values())
        model = serving_model(sm, target.endpoint_name)
        result.serving_after = {model: answers} if model and answers else {}
    configs = {c for c in (result.endpoint_config_before, result.endpoint_config_after,
                           (doc.get("deployment") or {}).get("target_config")) if c}
    result.traffic = fleet_traffic(cw, sm, target.endpoint_name, configs, since, datetime.now(UTC)) or result.traffic
    result.problems += check(result, scenario, doc)
    return result


def plan(selected: list[Scenario], has_endpoint: bool) -> list[tuple[Scenario, str | None]]:
    """The scenarios to run in table order, each with what it needs first: `first-deployment` (marked as the
    setup of the scenario that needs it) before a scenario that needs an endpoint when there is none yet."""
    ordered = sorted(selected, key=scenarios.SCENARIOS.index)
    steps: list[tuple[Scenario, str | None]] = []
    first = scenarios.BY_KEY["first-deployment"]
    for scenario in ordered:
        if scenario.needs_endpoint and not has_endpoint:
            steps.append((first, scenario.key))
            has_endpoint = True
        steps.append((scenario, None))
        has_endpoint = has_endpoint or scenario.endpoint_changes
    return steps


def run_all(
    target: Target, models_dir: Path, selected: list[Scenario] | None = None,
    on_tick: Callable[[Snapshot], None] | None = None, on_result: Callable[[ScenarioResult], None] | None = None,
    alerts: Any = None,
) -> Iterator[ScenarioResult]:
    data = holdout(models_dir)
    has_endpoint = endpoint_view(target.client("sagemaker"), target.endpoint_name).status is not None
    for scenario, setup_for in plan(selected or list(scenarios.SCENARIOS), has_endpoint):
        result = run_scenario(target, scenario, models_dir, data, on_tick=on_tick, alerts=alerts)
        result.setup_for = setup_for
        if on_result is not None:
            on_result(result)
        yield result


# ---------------------------------------------------------------- guardrail demo


def _needed_models() -> set[str]:
    return {s.model for s in scenarios.SCENARIOS if s.model}


def ensure_models(models_dir: Path, train: bool, trials: int | None, console: Any) -> None:
    """Train (or reuse) the scenario models; without training, insist they are there."""
    missing = sorted(m for m in _needed_models() if not (models_dir / m / "model.tar.gz").is_file())
    if not holdout_path(models_dir).is_file():
        missing.append("holdout.csv")
    if not missing:
        console.print(f"models: reusing {models_dir}")
        return
    if not train:
        raise DemoError(f"{models_dir} lacks {', '.join(missing)}: run `guardrail train --out {models_dir} --scenarios`")
    from training.cli import main as train_main

    console.print(f"models: training into {models_dir} (missing {', '.join(missing)})")
    argv = ["--out", str(models_dir), "--reuse", *(["--trials", str(trials)] if trials else []), "--scenarios"]
    if train_main(argv):
        raise DemoError("training failed")


def _state_colour(state: str) -> str:
    return {"ALARM": "red", "OK": "green"}.get(state, "yellow")


class LiveView:
    """The demo's live screen: scenario table, current execution, endpoint, traffic, alarms, alerts."""

    def __init__(self, selected: list[Scenario]) -> None:
        self.selected = list(selected)
        self.results: dict[str, ScenarioResult] = {}
        self.snapshot: Snapshot | None = None
        self.alerts: list[str] = []

    def tick(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        if snapshot.scenario not in {s.key for s in self.selected}:  # a setup step starting
            self.selected.insert(len(self.results), scenarios.BY_KEY[snapshot.scenario])

    def done(self, result: ScenarioResult) -> None:
        self.results[result.key] = result
        if result.key not in {s.key for s in self.selected}:  # a setup step: shown where it ran
            self.selected.insert(len(self.results) - 1, scenarios.BY_KEY[result.key])
        if result.alert_subject:
            self.alerts.append(f"{result.alert_outcome}: {result.alert_subject}")

    @staticmethod
    def _now(snap: Snapshot) -> Any:
        from rich.console import Group
        from rich.markup import escape

        ep = snap.endpoint
        answered = sum(snap.traffic.values())
        traffic = f"{answered} answered" if answered or snap.traffic_errors else "—"
        if snap.traffic_errors:
            traffic += "  [red]errors " + "  ".join(f"{escape(k)}: {n}" for k, n in snap.traffic_errors.items()) + "[/red]"
        shown = alarms_in_play(snap.alarms, snap.in_play)
        alarms = "\n".join(
            f"[{_state_colour(v)}]{v:<17}[/{_state_colour(v)}] {escape(k)}" for k, v in sorted(shown.items())
        ) or "—"
        head = (
            f"state machine  [bold cyan]{escape(snap.state or '…')}[/bold cyan]\n"
            f"endpoint       {escape(ep.status or '(none)')}  config {escape(ep.config or '—')}"
            + (f"  → {escape(ep.pending_config)}" if ep.pending_config else "") + "\n"
            f"client         {traffic}"
        )
        hidden = len(snap.alarms) - len(shown)
        tail = f"alarms of the configs in play{f' ({hidden} of retired configs not shown)' if hidden else ''}\n{alarms}"
        return Group(head, fleets_table(ep.fleets) if ep.fleets else "fleets         —", tail)

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        table = Table(title="Guardrail scenarios", expand=True)
        for column in ("scenario", "expected", "actual", "time", ""):
            table.add_column(column)
        running = self.snapshot.scenario if self.snapshot else None
        for s in self.selected:
            r = self.results.get(s.key)
            if r is not None:
                mark = "[green]✓[/green]" if r.ok else "[red]✗[/red]"
                table.add_row(s.title, s.expected, r.actual or "—", f"{r.seconds:.1f}s", mark)
            elif s.key == running and self.snapshot:
                table.add_row(f"[bold]{s.title}[/bold]", s.expected, "…", f"{self.snapshot.elapsed:.1f}s", "⏳")
            else:
                table.add_row(f"[dim]{s.title}[/dim]", s.expected, "", "", "")
        parts: list[Any] = [table]
        snap = self.snapshot
        if snap is not None and snap.scenario not in self.results:
            parts.append(Panel(self._now(snap), title=f"now: {snap.scenario}", border_style="cyan"))
        if self.alerts:
            from rich.markup import escape

            parts.append(Panel(escape("\n".join(self.alerts[-6:])), title="SNS alerts", border_style="magenta"))
        return Group(*parts)


def _share(f: FleetView) -> str:
    if f.share is None:
        return "mirror"
    return f"{100 * f.share:.0f}%"


def _rate(f: FleetView) -> str:
    return "—" if f.rps is None else f"{f.rps:.1f} req/s"


def fleets_table(fleets: list[FleetView]) -> Any:
    """One row per fleet: what SageMaker routes to it (capacity share), its instances and weight, its req/s."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for column, justify in (("fleet", "left"), ("model", "left"), ("config", "left"), ("split", "right"),
                            ("instances", "right"), ("weight", "right"), ("req/s (CloudWatch)", "right"),
                            ("status", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for f in fleets:
        instances = f"{f.instances[0]}/{f.instances[1]}" if f.instances else "—"
        table.add_row(f.role, escape(f.model or f.variant), escape(f.config or "—"), _share(f), instances,
                      f"{f.weight:.2f}", _rate(f), escape(f.status or ""))
    return table


def summary_table(results: list[ScenarioResult]) -> Any:
    from rich.table import Table

    table = Table(title="Summary")
    for column in ("scenario", "expected", "actual", "time", "result"):
        table.add_column(column)
    for r in results:
        from rich.markup import escape

        verdict = "[green]ok[/green]" if r.ok else "[red]" + escape("; ".join(r.problems)) + "[/red]"
        name = r.key + (f" (setup for {r.setup_for})" if r.setup_for else "")
        table.add_row(name, r.expected, r.actual or "—", f"{r.seconds:.1f}s", verdict)
    return table


def _link(report: str | None) -> str:
    return f"<a href='{Path(report).name}'>report</a>" if report else ""


def write_index(reports_dir: Path, results: list[ScenarioResult]) -> Path:
    """reports/index.html: the summary with a link to each execution's report."""
    import html

    rows = "\n".join(
        f"<tr><td>{html.escape(r.title)}</td><td>{r.expected}</td><td>{r.actual or '—'}</td>"
        f"<td>{r.seconds:.1f}s</td><td>{'ok' if r.ok else html.escape('; '.join(r.problems))}</td>"
        f"<td>{_link(r.report)}</td></tr>"
        for r in results
    )
    page = (
        "<!doctype html><meta charset='utf-8'><title>Guardrail demo</title>"
        "<style>body{font-family:system-ui;margin:2rem}td,th{border:1px solid #ddd;padding:.3rem .6rem}"
        "table{border-collapse:collapse}</style><h1>Guardrail demo</h1>"
        "<table><tr><th>scenario</th><th>expected</th><th>actual</th><th>time</th><th>result</th><th></th></tr>"
        f"{rows}</table>"
    )
    path = reports_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def run_demo(
    models_dir: Path = Path("artifacts/models"), reports_dir: Path = Path("reports"),
    workdir: Path = Path(".guardrail/demo"), only: list[str] | None = None, train: bool = True,
    trials: int | None = None, console: Any = None, target: Target | None = None,
) -> int:
    """`guardrail demo`: returns the exit code (1 when any scenario's outcome differs from the table).

    With `target` (`guardrail demo --attach`), runs on that deployed Guardrail instead of starting a local cloud."""
    from rich.console import Console
    from rich.live import Live

    from guardrail.report import write_report
    from local.alerts import AlertStream
    from local.cloud import LocalCloud

    console = console or Console()
    selected = [scenarios.get(k) for k in only] if only else list(scenarios.SCENARIOS)
    selected.sort(key=lambda s: scenarios.SCENARIOS.index(s))
    models_dir, reports_dir = Path(models_dir).resolve(), Path(reports_dir)
    from rich.markup import escape

    cloud: Any = None
    try:
        ensure_models(models_dir, train, trials, console)
        if target is None:
            console.print("local cloud: starting (moto, SageMaker emulator, alarm evaluator, Lambda runtime)…")
            t0 = time.monotonic()
            cloud = LocalCloud.spawn(workdir, timeout=300)  # a loaded 2-core machine can take minutes
    except (DemoError, RuntimeError, TimeoutError) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 2
    results: list[ScenarioResult] = []
    try:
        if cloud is not None:
            assert cloud.state is not None
            target = Target.from_outputs(cloud.outputs, cloud.state.state_machines, cloud.env,
                                         cloud.state.alert_queue_url)
            console.print(f"local cloud: ready in {time.monotonic() - t0:.1f}s, stack deployed "
                          f"(bucket {target.bucket}, endpoint {target.endpoint_name})")
        assert target is not None
        alerts = AlertStream(target.env or {}, target.alert_queue_url)
        view = LiveView(selected)
        with Live(view, console=console, refresh_per_second=4, transient=False):
            for result in run_all(target, models_dir, selected, on_tick=view.tick, on_result=view.done,
                                  alerts=alerts):
                results.append(result)
        reports_dir.mkdir(parents=True, exist_ok=True)
        t_reports = time.monotonic()
        for r in results:
            if r.execution_arn:
                r.report = str(write_report(r.execution_arn, reports_dir / f"{r.key}.html", client=target.client))
        index = write_index(reports_dir, results)
        console.print(f"\nreports: {len(results)} written in {time.monotonic() - t_reports:.1f}s")
    finally:
        if cloud is not None:
            cloud.stop()
    console.print(summary_table(results))
    console.print(f"reports: {index}")
    failed = [r.key for r in results if not r.ok]
    if failed:
        console.print(f"[red]{len(failed)} scenario(s) differ from the scenario table (README.md \"Demo\", "
                      f"guardrail/scenarios.py): {', '.join(failed)}[/red]")
        return 1
    console.print(f"[green]all {len(results)} scenarios as expected[/green]")
    return 0
