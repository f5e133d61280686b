"""An HTML report of one Guardrail execution, built from AWS APIs only.

Everything comes through boto3 (Step Functions execution history, CloudWatch metrics, alarms and alarm
history), so the same report works for a local-cloud execution and for a real AWS one. Plots are plotly; the
reports of a folder share one plotly.min.js written beside them (4.8 MB once instead of in every report), so a
report still opens offline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jinja2
import plotly.graph_objects as go
from botocore.exceptions import BotoCoreError, ClientError
from plotly.subplots import make_subplots
from pydantic import BaseModel, Field

NAMESPACE = "AWS/SageMaker"
TEMPLATE = Path(__file__).with_name("report_template.html")
# CloudWatch accepts these periods (1-30 s only for high-resolution metrics, which the emulator publishes).
PERIODS = (1, 5, 10, 30, 60, 300, 900, 3600)
# State names that mark a moment worth a vertical line on the plots, and their label.
MOMENT_STATES = {
    "Deploy": "deploy",
    "StartShadowTest": "shadow start",
    "ConcludeShadowTest": "shadow concluded",
    "Rollback": "post-deployment rollback",
    "RolledBack": "rolled back",
    "Promoted": "promoted",
    "ShadowRejected": "shadow rejected",
    "Rejected": "rejected",
    "Notify": "notify",
}
ALARM_LEVEL = {"OK": 0.0, "INSUFFICIENT_DATA": 0.5, "ALARM": 1.0}


class ReportError(RuntimeError):
    """The execution cannot be reported on (unknown ARN, no access, ...)."""


class StateVisit(BaseModel):
    name: str
    kind: str  # Task, Choice, Wait, Pass, Fail, Succeed ...
    entered: datetime
    exited: datetime | None = None
    failed: bool = False  # ended on an error (caught or fatal), not recovered by a retry
    retries: int = 0  # errors a Retry recovered from
    error: str | None = None
    cause: str | None = None
    output: dict[str, Any] | None = None


class Moment(BaseModel):
    at: datetime
    label: str


class Series(BaseModel):
    label: str
    metric: str
    stat: str
    dimensions: dict[str, str]
    timestamps: list[datetime] = Field(default_factory=list)
    values: list[float] = Field(default_factory=list)


class AlarmInfo(BaseModel):
    name: str
    metric: str
    statistic: str | None
    threshold: float
    comparison: str
    dimensions: dict[str, str]
    state: str
    transitions: list[tuple[datetime, str]] = Field(default_factory=list)
    history_source: str = "describe_alarm_history"


class Notification(BaseModel):
    at: datetime
    outcome: str | None
    subject: str | None
    message: str | None
    detail: dict[str, Any] = Field(default_factory=dict)


class ReportData(BaseModel):
    execution_arn: str
    reason: str | None = None  # one line: why this outcome (the alarm, the verdict and its numbers, the error)
    fleets: dict[str, Any] | None = None  # requests each fleet served (watch.evidence), as the alerts say
    name: str
    status: str
    start: datetime
    stop: datetime | None
    outcome: str | None
    endpoint: str | None
    new_config: str | None
    previous_config: str | None
    error: dict[str, Any] | None
    document: dict[str, Any]
    visits: list[StateVisit]
    moments: list[Moment]
    period: int
    series: list[Series]
    alarms: list[AlarmInfo]
    notifications: list[Notification]
    shadow: dict[str, Any] | None


# ---------------------------------------------------------------- collecting


def _utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)


def _json(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else {"value": value}


def _find(doc: Any, key: str) -> Any:
    """First value under `key` anywhere in a nested document (the document's keys are owned by each step)."""
    if isinstance(doc, dict):
        if doc.get(key) not in (None, "", [], {}):
            return doc[key]
        for value in doc.values():
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for value in doc:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def parse_history(events: list[dict[str, Any]]) -> list[StateVisit]:
    """Turn raw history events into state visits (entered → exited), with failures attached."""
    visits: list[StateVisit] = []
    open_visit: StateVisit | None = None
    for event in events:
        kind: str = event["type"]
        at = _utc(event["timestamp"])
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            open_visit = StateVisit(name=details["name"], kind=kind.removesuffix("StateEntered"), entered=at)
            visits.append(open_visit)
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            for visit in reversed(visits):
                if visit.name == details["name"] and visit.exited is None:
                    visit.exited = at
                    visit.output = _json(details.get("output"))
                    break
        elif kind.endswith(("Failed", "TimedOut")) and open_visit is not None:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            if open_visit.failed:  # an earlier error of this visit was retried
                open_visit.retries += 1
            open_visit.failed = True
            open_visit.error = details.get("error") or open_visit.error
            open_visit.cause = details.get("cause") or open_visit.cause
            if kind == "ExecutionFailed" and open_visit.exited is None:
                open_visit.exited = at
        elif kind.endswith("Succeeded") and open_visit is not None and open_visit.failed:
            open_visit.failed = False  # a retry succeeded
            open_visit.retries += 1
    return visits


def _pick_period(seconds: float) -> int:
    for period in PERIODS:
        if seconds / period <= 90:
            return period
    return PERIODS[-1]


def _dims(items: list[dict[str, str]]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in items}


Dims = tuple[tuple[str, str], ...]


def _dimension_sets(
    sm: Any, endpoint: str, configs: set[str], variants: set[str] | None
) -> set[Dims] | None:
    """The series SageMaker publishes for these configs' variants, from DescribeEndpointConfig (no listing).

    Dimension order as SageMaker's metrics carry them (moto matches dimension lists order-sensitively).
    None when a config is gone (deleted): the caller lists the metrics instead.
    """
    keys: set[Dims] = set()
    for config in configs:
        try:
            described = sm.describe_endpoint_config(EndpointConfigName=config)
        except (ClientError, BotoCoreError):
            return None
        for v in described.get("ProductionVariants", []) + described.get("ShadowProductionVariants", []):
            base = (("EndpointName", endpoint), ("VariantName", v["VariantName"]))
            keys |= {base, (*base, ("EndpointConfigName", config))}
    for variant in variants or ():
        keys.add((("EndpointName", endpoint), ("VariantName", variant)))
    return keys


def _listed_dimension_sets(cw: Any, endpoint: str, metrics: dict[str, list[str]]) -> set[Dims]:
    keys: set[Dims] = set()
    for metric in metrics:
        pages = cw.get_paginator("list_metrics").paginate(
            Namespace=NAMESPACE, MetricName=metric, Dimensions=[{"Name": "EndpointName", "Value": endpoint}]
        )
        # A set: moto lists a metric once per datum. Tuples keep list_metrics' dimension order.
        keys |= {tuple((d["Name"], d["Value"]) for d in item["Dimensions"]) for page in pages for item in page["Metrics"]}
    return keys


def _metric_series(
    cw: Any, endpoint: str, start: datetime, end: datetime, period: int,
    configs: set[str] | None = None, variants: set[str] | None = None, sm: Any = None,
) -> list[Series]:
    """Invocations, 5XX rate and latency of the endpoint's variants in the window.

    With `configs`/`variants`, only the fleets this execution touched: series of those endpoint configs,
    and per-variant series of their variants and of `variants` (the shadow's); None means every one.
    """
    wanted = {
        "Invocations": ["Sum"],
        "Invocation5XXErrors": ["Average"],
        "ModelLatency": ["Average"],
    }
    keys = _dimension_sets(sm, endpoint, configs, variants) if sm is not None and configs else None
    if keys is None:
        keys = _listed_dimension_sets(cw, endpoint, wanted)
    elif variants:  # a shadow test's fleets publish under the inference experiment's own endpoint config
        keys |= {k for k in _listed_dimension_sets(cw, endpoint, wanted) if dict(k).get("VariantName") in variants}
    keep_variants = set(variants or ())
    if configs is not None:
        keep_variants |= {dict(d).get("VariantName", "") for d in keys if dict(d).get("EndpointConfigName") in configs}

    def relevant(dims: dict[str, str]) -> bool:
        if "VariantName" not in dims:
            return False
        if configs is None:
            return True
        if "EndpointConfigName" in dims:
            return dims["EndpointConfigName"] in configs or dims["VariantName"] in (variants or ())
        # Per-variant series (both fleets summed) only feed the shadow panel.
        return bool(variants) and dims["VariantName"] in keep_variants

    combos: list[Series] = []
    for metric, stats in wanted.items():
        for key in sorted(keys):
            dims = dict(key)
            if not relevant(dims):
                continue
            where = dims.get("EndpointConfigName", "all configs")
            for stat in stats:
                combos.append(Series(label=f"{dims['VariantName']} · {where}", metric=metric, stat=stat,
                                     dimensions=dims))
    if not combos:
        return []
    queries = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": s.metric,
                    # In list_metrics' order: moto matches dimension lists order-sensitively.
                    "Dimensions": [{"Name": k, "Value": v} for k, v in s.dimensions.items()],
                },
                "Period": period,
                "Stat": s.stat,
            },
            "ReturnData": True,
        }
        for i, s in enumerate(combos)
    ]
    for chunk in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries[chunk : chunk + 500],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        while True:
            page = cw.get_metric_data(**kwargs)
            for result in page["MetricDataResults"]:
                series = combos[int(result["Id"][1:])]
                series.timestamps.extend(_utc(t) for t in result["Timestamps"])
                series.values.extend(float(v) for v in result["Values"])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    for s in combos:  # real CloudWatch may return unordered pages
        pairs = sorted(zip(s.timestamps, s.values, strict=True))
        s.timestamps, s.values = [p[0] for p in pairs], [p[1] for p in pairs]
    return [s for s in combos if s.values]


def _alarm_transitions(
    cw: Any, alarm: dict[str, Any], start: datetime, end: datetime
) -> tuple[list[tuple[datetime, str]], str]:
    try:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "AlarmName": alarm["AlarmName"],
            "HistoryItemType": "StateUpdate",
            "StartDate": start,
            "EndDate": end,
            "ScanBy": "TimestampAscending",
        }
        while True:
            page = cw.describe_alarm_history(**kwargs)
            items.extend(page["AlarmHistoryItems"])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except (ClientError, BotoCoreError, NotImplementedError):
        # A backend without alarm history (plain moto): the current state and when it was set is all there is.
        at = _utc(alarm["StateUpdatedTimestamp"])
        return [(at, alarm["StateValue"])], "describe_alarms (no alarm history available)"
    # The alarm's line starts when it was (last) put, not at the window's start: no state before it existed.
    put = alarm.get("AlarmConfigurationUpdatedTimestamp")
    opened = max(start, _utc(put)) if put else start
    transitions: list[tuple[datetime, str]] = []
    for item in sorted(items, key=lambda i: i["Timestamp"]):
        data = _json(item.get("HistoryData")) or {}
        old_state = (data.get("oldState") or {}).get("stateValue")
        new_state = (data.get("newState") or {}).get("stateValue")
        at = _utc(item["Timestamp"])
        if old_state and not transitions:  # the state the window (or the alarm) opened with
            transitions.append((min(opened, at), old_state))
        if new_state:
            transitions.append((at, new_state))
    if not transitions:  # no change in the window: it stayed in its current state
        transitions.append((opened, alarm["StateValue"]))
    return transitions, "describe_alarm_history"


def _alarms(cw: Any, endpoint: str, names: list[str], start: datetime, end: datetime) -> list[AlarmInfo]:
    """The execution's alarms (by name when the document has them, else every alarm on the endpoint)."""
    found: list[dict[str, Any]] = []
    paginator = cw.get_paginator("describe_alarms")
    pages = paginator.paginate(AlarmNames=names) if names else paginator.paginate(AlarmTypes=["MetricAlarm"])
    for page in pages:
        found.extend(page.get("MetricAlarms", []))
    infos = []
    for alarm in found:
        dims = _dims(alarm.get("Dimensions", []))
        if not names and dims.get("EndpointName") != endpoint:
            continue
        transitions, source = _alarm_transitions(cw, alarm, start, end)
        infos.append(
            AlarmInfo(
                name=alarm["AlarmName"],
                metric=alarm.get("MetricName", "?"),
                statistic=alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
                threshold=float(alarm.get("Threshold", 0.0)),
                comparison=alarm.get("ComparisonOperator", ""),
                dimensions=dims,
                state=alarm["StateValue"],
                transitions=transitions,
                history_source=source,
            )
        )
    return infos


def _alarm_names(doc: dict[str, Any]) -> list[str]:
    section = doc.get("alarms") or _find(doc, "alarm_names") or {}
    names: list[str] = []
    if isinstance(section, dict):
        for key in ("names", "alarm_names", "error_alarm", "latency_alarm"):
            value = section.get(key)
            if isinstance(value, str):
                names.append(value)
            elif isinstance(value, list):
                names.extend(v for v in value if isinstance(v, str))
    elif isinstance(section, list):
        names.extend(v for v in section if isinstance(v, str))
    return list(dict.fromkeys(names))


def _moments(visits: list[StateVisit], alarms: list[AlarmInfo]) -> list[Moment]:
    moments: list[Moment] = []
    for visit in visits:
        if visit.name in MOMENT_STATES:
            moments.append(Moment(at=visit.entered, label=MOMENT_STATES[visit.name]))
        deployment = (visit.output or {}).get("deployment") or {}
        rolled_back = isinstance(deployment, dict) and deployment.get("status") == "ROLLED_BACK"
        if rolled_back and not any(m.label == "rollback detected" for m in moments):
            moments.append(Moment(at=visit.exited or visit.entered, label="rollback detected"))
    for alarm in alarms:
        for at, state in alarm.transitions:
            if state == "ALARM":
                moments.append(Moment(at=at, label=f"ALARM {alarm.metric}"))
    return sorted(moments, key=lambda m: m.at)


def _notifications(visits: list[StateVisit]) -> list[Notification]:
    notes = []
    for visit in visits:
        if not visit.name.startswith("Notify") or visit.output is None:
            continue
        result = visit.output.get("notification") or visit.output.get("notify") or {}
        result = result.get("r", result) if isinstance(result, dict) else {}
        payload = result.get("payload") if isinstance(result.get("payload"), dict) else {}
        notes.append(
            Notification(
                at=visit.exited or visit.entered,
                outcome=result.get("outcome") or visit.output.get("outcome"),
                subject=result.get("subject"),
                message=result.get("message") or payload.get("summary"),
                detail=payload or result,
            )
        )
    return notes


def _cause(error: dict[str, Any] | None) -> str:
    """An error's message: a Lambda error's Cause is JSON with errorMessage."""
    cause = str((error or {}).get("Cause") or "")
    parsed = _json(cause)
    return str(parsed.get("errorMessage") or cause) if parsed else cause


def reason_for(doc: dict[str, Any], error: dict[str, Any] | None) -> str | None:
    """One line under the outcome: why it ended so (the alarm, the verdict and its numbers, or the error)."""
    outcome = doc.get("outcome")
    deployment = doc.get("deployment") if isinstance(doc.get("deployment"), dict) else {}
    watch = doc.get("watch") if isinstance(doc.get("watch"), dict) else {}
    shadow = doc.get("shadow") if isinstance(doc.get("shadow"), dict) else {}
    evidence = watch.get("evidence") if isinstance(watch.get("evidence"), dict) else None
    served = None
    if evidence:
        served = f"the new fleet served {evidence.get('new_fleet_requests')} request(s)"
        if evidence.get("old_fleet_requests") is not None:
            served += f", the old fleet {evidence['old_fleet_requests']}"
        served += f" (at least {evidence.get('min_requests')} needed to verify it)"
    if shadow.get("verdict") and outcome in ("PROMOTED", "SHADOW_REJECTED", "INCONCLUSIVE"):
        reasons = (shadow.get("analysis") or {}).get("reasons") or []
        return f"Shadow verdict {shadow['verdict']}: " + (str(reasons[0]) if reasons else "no reasons recorded")
    if outcome == "ROLLED_BACK":
        firing = deployment.get("alarms_in_alarm") or watch.get("alarms_in_alarm") or watch.get("fired_during_watch")
        why = deployment.get("failure_reason") or (
            f"alarm(s) {', '.join(map(str, firing))} fired after the deployment" if firing else None
        ) or (f"too few requests to verify the model: {served}" if served else "rolled back")
        return why if not served or served in why else f"{why}; {served}"
    if outcome in ("DEPLOYED", "DEPLOYED_UNVERIFIED"):
        text = "Not verified: " if outcome == "DEPLOYED_UNVERIFIED" else "No guardrail alarm fired; "
        return text + (served or "no request counts recorded") + "."
    if outcome == "CHANGED_EXTERNALLY":
        return f"Someone else changed the endpoint during the watch: it serves {watch.get('serving_config')}."
    if error and (error.get("Error") or error.get("Cause")):
        return f"{error.get('Error')}: {_cause(error)}"
    return None


def collect(
    execution_arn: str, client: Callable[[str], Any] | None = None, period: int | None = None
) -> ReportData:
    """Read everything the report shows about one execution.

    `client(service)` makes the boto3 clients (default `boto3.client`: AWS, or the local cloud when the
    AWS_ENDPOINT_URL* variables point at it; `local.env.client` with an env also works).
    """
    client = client or boto3.client
    sfn = client("stepfunctions")
    cw = client("cloudwatch")
    try:
        execution = sfn.describe_execution(executionArn=execution_arn)
        events = _history(sfn, execution_arn)
    except (ClientError, BotoCoreError) as exc:
        raise ReportError(f"cannot read execution {execution_arn}: {exc}") from exc
    visits = parse_history(events)
    start = _utc(execution["startDate"])
    stop = _utc(execution["stopDate"]) if execution.get("stopDate") else None
    # The final document, or the last one a state produced when the execution failed or still runs.
    document = _json(execution.get("output")) or next(
        (v.output for v in reversed(visits) if v.output), None
    ) or _json(execution.get("input")) or {}
    upload = document.get("upload") or {}
    endpoint = upload.get("endpoint_name") or _find(document, "endpoint_name")
    new_config = (upload.get("names") or {}).get("endpoint_config") or _find(document, "target_config")
    previous = (
        _find(document.get("deployment") or {}, "previous_config")
        or _find(document, "previous_config")
        or (document.get("endpoint_config") or {}).get("live_config")  # a shadow test: what served before it
    )
    window_start = start - timedelta(seconds=30)
    window_end = (stop or datetime.now(UTC)) + timedelta(seconds=30)
    chosen_period = period or _pick_period((window_end - window_start).total_seconds())
    series: list[Series] = []
    alarms: list[AlarmInfo] = []
    if endpoint:
        deployment = document.get("deployment") if isinstance(document.get("deployment"), dict) else {}
        configs = {c for c in (new_config, previous, deployment.get("current_config")) if c}
        shadow_doc = document.get("shadow") if isinstance(document.get("shadow"), dict) else {}
        variants = {v for v in (shadow_doc.get("shadow_variant"), shadow_doc.get("production_variant")) if v}
        series = _metric_series(cw, endpoint, window_start, window_end, chosen_period, configs, variants,
                                sm=client("sagemaker"))
        alarms = _alarms(cw, endpoint, _alarm_names(document), window_start, window_end)
    error = document.get("error") or (
        {"Error": execution.get("error"), "Cause": execution.get("cause")} if execution.get("error") else None
    )
    shadow = document.get("shadow") if isinstance(document.get("shadow"), dict) else None
    watch = document.get("watch") if isinstance(document.get("watch"), dict) else {}
    return ReportData(
        execution_arn=execution_arn,
        reason=reason_for(document, error),
        fleets=watch.get("evidence") if isinstance(watch.get("evidence"), dict) else None,
        name=execution.get("name") or execution_arn.rsplit(":", 1)[-1],
        status=execution["status"],
        start=start,
        stop=stop,
        outcome=document.get("outcome"),
        endpoint=endpoint,
        new_config=new_config,
        previous_config=previous,
        error=error,
        document=document,
        visits=visits,
        moments=_moments(visits, alarms),
        period=chosen_period,
        series=series,
        alarms=alarms,
        notifications=_notifications(visits),
        shadow=shadow,
    )


# ---------------------------------------------------------------- plotting


LABEL_PX_PER_CHAR, PLOT_PX = 7.0, 900  # a 10-px label's width, and a narrow plot's width (conservative)
LEVEL_PX = 14


def _label_levels(moments: list[Moment], span: tuple[datetime, datetime]) -> list[int]:
    """A row per label so that no two labels overlap: a label goes to the first row whose last label ended
    before it starts (widths estimated from the text, the time span and a narrow plot)."""
    seconds = max((span[1] - span[0]).total_seconds(), 1e-3)
    ends: list[float] = []  # per row: where its last label ends, in seconds from span start
    levels = []
    for moment in moments:
        at = (moment.at - span[0]).total_seconds()
        half = len(moment.label) * LABEL_PX_PER_CHAR / PLOT_PX * seconds / 2
        level = next((i for i, end in enumerate(ends) if end < at - half), len(ends))
        if level == len(ends):
            ends.append(0.0)
        ends[level] = at + half
        levels.append(level)
    return levels


def _mark_moments(fig: go.Figure, moments: list[Moment], span: tuple[datetime, datetime], rows: int = 1,
                  above: int = 0) -> int:
    """Vertical dashed lines at the moments that matter (shapes: they work on date axes), labelled above the
    plot in as many rows as needed so that no label overlaps another (`above`: pixels to keep free for subplot
    titles). Returns the top margin the labels need. Set in one layout update: plotly copies the whole shape
    list on every add_shape."""
    shapes, notes = list(fig.layout.shapes), list(fig.layout.annotations)
    levels = _label_levels(moments, span)
    for moment, level in zip(moments, levels, strict=True):
        colour = "#c0392b" if "ALARM" in moment.label or "roll" in moment.label else "#7f8c8d"
        for row in range(1, rows + 1):
            axis = "" if row == 1 else str(row)
            shapes.append({
                "type": "line", "x0": moment.at, "x1": moment.at, "y0": 0, "y1": 1, "xref": f"x{axis}",
                "yref": f"y{axis} domain", "line": {"dash": "dot", "width": 1, "color": colour},
            })
        notes.append({
            "x": moment.at, "y": 1.0, "xref": "x", "yref": "paper", "text": moment.label, "showarrow": False,
            "yanchor": "bottom", "yshift": above + LEVEL_PX * level, "font": {"size": 10, "color": colour},
        })
    fig.update_layout(shapes=shapes, annotations=notes)
    return above + LEVEL_PX * (max(levels, default=-1) + 1) + 40


def timeline_figure(data: ReportData) -> go.Figure:
    """The path through the state machine: one bar per state visit."""
    fig = go.Figure()
    order = list(dict.fromkeys(v.name for v in data.visits))
    end = data.stop or datetime.now(UTC)
    for failed in (False, True):
        xs: list[Any] = []
        ys: list[Any] = []
        texts: list[Any] = []
        for visit in data.visits:
            if visit.failed != failed:
                continue
            leave = visit.exited or end
            # A zero-length visit (Choice, Pass) still gets a visible tick.
            leave = max(leave, visit.entered + timedelta(milliseconds=150))
            label = f"{visit.name} ({visit.kind}) {(leave - visit.entered).total_seconds():.2f}s"
            if visit.error:
                label += f" · {visit.error}" + (f" (retried {visit.retries} times)" if visit.retries else "")
            xs += [visit.entered, leave, None]
            ys += [visit.name, visit.name, None]
            texts += [label, label, None]
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs, y=ys, text=texts, hoverinfo="text", mode="lines+markers",
                    name="failed / caught" if failed else "state",
                    line={"width": 10, "color": "#c0392b" if failed else "#2e86de"},
                    marker={"size": 4},
                )
            )
    pad = max((end - data.start).total_seconds() * 0.03, 0.5)
    span = (data.start - timedelta(seconds=pad), end + timedelta(seconds=pad))
    top = _mark_moments(fig, data.moments, span)
    fig.update_xaxes(range=list(span))
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(order)), title=None)
    fig.update_layout(
        title={"text": "Path through the state machine", "y": 0.99, "yanchor": "top"},
        height=max(300, 28 * len(order) + 160 + top), margin={"t": top + 30, "l": 10, "r": 10},
        xaxis_title="time (UTC)", showlegend=True,
    )
    return fig


def _alarm_for(alarms: list[AlarmInfo], metric: str) -> list[AlarmInfo]:
    return [a for a in alarms if a.metric == metric]


def metrics_figure(data: ReportData) -> go.Figure:
    """Traffic per variant/config, 5XX rate and latency against the alarm thresholds, alarm states."""
    fig = make_subplots(
        rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.06,
        subplot_titles=(
            f"Invocations per variant · endpoint config (Sum per {data.period}s)",
            "Invocation5XXErrors rate (Average) vs alarm threshold",
            "ModelLatency (ms) vs alarm threshold",
            "Alarm state (0 OK · 0.5 insufficient data · 1 ALARM)",
        ),
    )
    for s in data.series:
        if s.metric == "Invocations" and "EndpointConfigName" in s.dimensions:
            fig.add_trace(go.Bar(x=s.timestamps, y=s.values, name=f"invocations {s.label}"), row=1, col=1)
        elif s.metric == "Invocation5XXErrors" and "EndpointConfigName" in s.dimensions:
            fig.add_trace(
                go.Scatter(x=s.timestamps, y=s.values, mode="lines+markers", name=f"5XX rate {s.label}"),
                row=2, col=1,
            )
        elif s.metric == "ModelLatency" and "EndpointConfigName" in s.dimensions:
            fig.add_trace(
                go.Scatter(
                    x=s.timestamps, y=[v / 1000 for v in s.values], mode="lines+markers",
                    name=f"latency {s.stat} {s.label}", line={"dash": "dot" if s.stat == "Maximum" else "solid"},
                ),
                row=3, col=1,
            )
    fig.update_layout(barmode="stack")
    x_range = [data.start - timedelta(seconds=5), (data.stop or datetime.now(UTC)) + timedelta(seconds=5)]
    for metric, row, scale in (("Invocation5XXErrors", 2, 1.0), ("ModelLatency", 3, 1 / 1000)):
        for alarm in _alarm_for(data.alarms, metric):
            fig.add_trace(
                go.Scatter(
                    x=x_range, y=[alarm.threshold * scale] * 2, mode="lines",
                    name=f"threshold {alarm.name}", line={"dash": "dash", "color": "#c0392b", "width": 1},
                ),
                row=row, col=1,
            )
    for alarm in data.alarms:
        if not alarm.transitions:
            continue
        xs = [t for t, _ in alarm.transitions] + [x_range[1]]
        ys = [ALARM_LEVEL.get(s, 0.5) for _, s in alarm.transitions]
        ys.append(ys[-1])
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines+markers", line_shape="hv", name=f"alarm {alarm.name}"),
            row=4, col=1,
        )
    fig.update_yaxes(range=[-0.1, 1.1], row=4, col=1)
    stamps = [t for s in data.series for t in s.timestamps]
    span = (min([x_range[0], *stamps]), max([x_range[1], *stamps]))
    top = _mark_moments(fig, data.moments, span, rows=4, above=22)  # above the first subplot's title
    fig.update_xaxes(range=list(span))
    fig.update_layout(height=1000 + top, margin={"t": top, "l": 10, "r": 10}, legend={"orientation": "h"})
    return fig


def _numbers(section: Any) -> dict[str, float]:
    if not isinstance(section, dict):
        return {}
    return {k: float(v) for k, v in section.items() if isinstance(v, int | float) and not isinstance(v, bool)}


SHADOW_NUMBERS = {  # analysis key -> (title, scale): latencies in ms
    "invocations": ("requests", 1.0),
    "errors_5xx": ("5XX errors", 1.0),
    "error_rate": ("5XX rate", 1.0),
    "latency_avg_us": ("mean ModelLatency (ms)", 1 / 1000),
    "latency_p99_us": ("p99 ModelLatency (ms)", 1 / 1000),
}


def shadow_figure(data: ReportData) -> go.Figure | None:
    """Production vs shadow: one small panel per number the verdict rests on (the analysis' own window)."""
    if not data.shadow:
        return None
    evidence = data.shadow.get("analysis") or data.shadow.get("evidence") or data.shadow
    production = _numbers(evidence.get("production")) if isinstance(evidence, dict) else {}
    shadow = _numbers(evidence.get("shadow")) if isinstance(evidence, dict) else {}
    metrics = [m for m in production if m in shadow]
    if not metrics:
        return None
    titles = [SHADOW_NUMBERS.get(m, (m.replace("_", " "), 1.0))[0] for m in metrics]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=titles)
    for col, metric in enumerate(metrics, start=1):
        scale = SHADOW_NUMBERS.get(metric, ("", 1.0))[1]
        values = [production[metric] * scale, shadow[metric] * scale]
        fig.add_trace(
            go.Bar(
                x=["production", "shadow"], y=values, name=titles[col - 1], text=[_fmt(v) for v in values],
                textposition="outside", cliponaxis=False, marker_color=["#2e86de", "#e67e22"], showlegend=False,
            ),
            row=1, col=col,
        )
    verdict = data.shadow.get("verdict") or (evidence.get("verdict") if isinstance(evidence, dict) else None)
    fig.update_layout(title=f"Shadow test · verdict {verdict or '?'}", height=380, margin={"t": 90})
    return fig


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def evidence_figure(data: ReportData) -> go.Figure | None:
    """The numbers behind the verdict: one row per metric of the sequential verdict (samples, estimates,
    always-valid interval, margin, mSPRT vs 1/alpha, p-value), then the data guardrails' findings."""
    analysis = (data.shadow or {}).get("analysis") or {}
    details = analysis.get("details") or {}
    verdict = details.get("verdict") or {}
    raw_check = data.document.get("data_check")
    check: dict[str, Any] = raw_check if isinstance(raw_check, dict) else {}
    metrics = verdict.get("metrics") or []
    if not metrics and not verdict and not check:
        return None
    columns = ["metric", "decision", "prod n", "shadow n", "prod", "shadow", "difference", "CI low", "CI high",
               "margin", "mSPRT", "1/alpha", "p-value"]
    keys = ["metric", "decision", "production_samples", "shadow_samples", "production_estimate", "shadow_estimate",
            "difference", "ci_low", "ci_high", "margin", "msprt", "threshold", "p_value"]
    rows = [[_fmt(m.get(k)) for k in keys] for m in metrics]
    evidence = details.get("evidence") or {}
    for label, section in (("shadow traffic", evidence), ("serving traffic", check)):
        drift = (section or {}).get("drift") or {}
        for f in (drift.get("features") or [])[:5]:
            rows.append([f"drift {f.get('feature')} ({label})", f.get("status"), "", _fmt(f.get("rows")), "", "",
                         f"PSI {_fmt(f.get('psi'))}", "", "", "", "", "", _fmt(f.get("ks_p_value") or f.get("chi2_p_value"))])
        quality = (section or {}).get("data_quality") or {}
        if quality:
            rows.append([f"data quality ({label})", "breach" if quality.get("rows_with_breaches") else "ok", "",
                         _fmt(quality.get("rows")), "", "", f"{_fmt(quality.get('rows_with_breaches'))} rows breach",
                         "", "", "", "", "", ""])
    for b in evidence.get("bias") or []:
        rows.append([f"live bias {b.get('facet')}", "within" if b.get("within_bound") else "outside" if
                     b.get("within_bound") is False else "—", "", _fmt(b.get("rows")), "", "",
                     f"DI {_fmt(b.get('disparate_impact'))} (training {_fmt(b.get('training_disparate_impact'))})",
                     "", "", "", "", "", ""])
    if not rows:
        return None
    title = verdict.get("explanation") or check.get("explanation") or "Verdict evidence"
    fig = go.Figure(go.Table(
        header={"values": columns, "fill_color": "#dfe6e9", "align": "left"},
        cells={"values": [list(c) for c in zip(*rows, strict=True)], "align": "left"},
    ))
    lines = [title[i : i + 140] for i in range(0, min(len(title), 560), 140)]
    top = 60 + 16 * len(lines)
    fig.update_layout(title={"text": "Verdict evidence<br><sup>" + "<br>".join(lines) + "</sup>"},
                      height=top + 40 + 30 * (len(rows) + 1), margin={"t": top, "b": 20})
    return fig


# ---------------------------------------------------------------- rendering


PLOTLY_JS = "plotly.min.js"  # beside the reports, shared by all of them


def render(data: ReportData) -> str:
    """The report as one HTML page that loads plotly.js from plotly.min.js beside it (write_report puts it there)."""
    figures = [
        f for f in (timeline_figure(data), metrics_figure(data), shadow_figure(data), evidence_figure(data))
        if f is not None
    ]
    divs = [
        fig.to_html(full_html=False, include_plotlyjs=("directory" if i == 0 else False), config={"displaylogo": False})
        for i, fig in enumerate(figures)
    ]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(TEMPLATE.read_text())
    return template.render(
        data=data,
        plots=[jinja2.utils.markupsafe.Markup(d) for d in divs],
        document=json.dumps(data.document, indent=2, default=str),
        duration=((data.stop or datetime.now(UTC)) - data.start).total_seconds(),
        generated=datetime.now(UTC),
    )


def write_report(
    execution_arn: str, out: Path | str | None = None, client: Callable[[str], Any] | None = None,
    period: int | None = None,
) -> Path:
    """Collect, render and write the report; returns the file written (default reports/<execution>.html)."""
    data = collect(execution_arn, client=client, period=period)
    path = Path(out) if out else Path("reports") / f"{data.name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_plotly_js(path.parent)
    path.write_text(render(data), encoding="utf-8")
    return path


def write_plotly_js(folder: Path) -> Path:
    """The one plotly.min.js of a reports folder (rewritten only when plotly's version changed)."""
    from plotly.offline import get_plotlyjs

    target = folder / PLOTLY_JS
    js = get_plotlyjs()
    if not target.exists() or target.stat().st_size != len(js.encode()):
        target.write_text(js, encoding="utf-8")
    return target
