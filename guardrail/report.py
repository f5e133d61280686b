"""An HTML report of one Guardrail execution, built from AWS APIs only.

Everything comes through boto3 (Step Functions execution history, CloudWatch metrics, alarms and alarm
history), so the same report works for a local-cloud execution and for a real AWS one. Plots are plotly
with plotly.js inlined: the report is one self-contained file that opens offline.
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
    transitions = []
    for item in sorted(items, key=lambda i: i["Timestamp"]):
        data = _json(item.get("HistoryData")) or {}
        old_state = (data.get("oldState") or {}).get("stateValue")
        new_state = (data.get("newState") or {}).get("stateValue")
        if old_state and not transitions:  # the state the window opened with
            transitions.append((start, old_state))
        if new_state:
            transitions.append((_utc(item["Timestamp"]), new_state))
    if not transitions:  # no change in the window: it stayed in its current state
        transitions.append((start, alarm["StateValue"]))
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
    previous = _find(document.get("deployment") or {}, "previous_config") or _find(document, "previous_config")
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
    return ReportData(
        execution_arn=execution_arn,
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


def _mark_moments(fig: go.Figure, moments: list[Moment], rows: int = 1) -> None:
    """Vertical dashed lines at the moments that matter (drawn as shapes: works on date axes).

    Set in one layout update: plotly copies the whole shape list on every add_shape.
    """
    shapes, notes = list(fig.layout.shapes), list(fig.layout.annotations)
    for moment in moments:
        colour = "#c0392b" if "ALARM" in moment.label or "roll" in moment.label else "#7f8c8d"
        for row in range(1, rows + 1):
            axis = "" if row == 1 else str(row)
            shapes.append({
                "type": "line", "x0": moment.at, "x1": moment.at, "y0": 0, "y1": 1, "xref": f"x{axis}",
                "yref": f"y{axis} domain", "line": {"dash": "dot", "width": 1, "color": colour},
            })
        notes.append({
            "x": moment.at, "y": 1.0, "xref": "x", "yref": "paper", "text": moment.label, "showarrow": False,
            "textangle": -60, "yanchor": "bottom", "font": {"size": 10, "color": colour},
        })
    fig.update_layout(shapes=shapes, annotations=notes)


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
    _mark_moments(fig, data.moments)
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(order)), title=None)
    fig.update_layout(
        title="Path through the state machine", height=max(300, 28 * len(order) + 160),
        margin={"t": 110, "l": 10, "r": 10}, xaxis_title="time (UTC)", showlegend=True,
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
    _mark_moments(fig, data.moments, rows=4)
    fig.update_layout(height=1000, margin={"t": 110, "l": 10, "r": 10}, legend={"orientation": "h"})
    return fig


def _numbers(section: Any) -> dict[str, float]:
    if not isinstance(section, dict):
        return {}
    return {k: float(v) for k, v in section.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def shadow_figure(data: ReportData) -> go.Figure | None:
    """Production vs shadow: one small panel per number the verdict rests on, plus invocations per variant."""
    if not data.shadow:
        return None
    evidence = data.shadow.get("analysis") or data.shadow.get("evidence") or data.shadow
    production = _numbers(evidence.get("production")) if isinstance(evidence, dict) else {}
    shadow = _numbers(evidence.get("shadow")) if isinstance(evidence, dict) else {}
    metrics = [m for m in production if m in shadow]
    per_variant: dict[str, float] = {}
    for s in data.series:
        if s.metric == "Invocations" and "EndpointConfigName" not in s.dimensions:
            per_variant[s.dimensions["VariantName"]] = sum(s.values)
    panels = [*metrics, *(["invocations per variant (CloudWatch)"] if per_variant else [])]
    if not panels:
        return None
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels)
    for col, metric in enumerate(metrics, start=1):
        fig.add_trace(
            go.Bar(
                x=["production", "shadow"], y=[production[metric], shadow[metric]], name=metric,
                marker_color=["#2e86de", "#e67e22"], showlegend=False,
            ),
            row=1, col=col,
        )
    if per_variant:
        fig.add_trace(
            go.Bar(x=list(per_variant), y=list(per_variant.values()), marker_color="#7f8c8d", showlegend=False),
            row=1, col=len(panels),
        )
    verdict = data.shadow.get("verdict") or (evidence.get("verdict") if isinstance(evidence, dict) else None)
    fig.update_layout(title=f"Shadow test · verdict {verdict or '?'}", height=380)
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
    wrapped = "<br>".join(title[i : i + 140] for i in range(0, min(len(title), 560), 140))
    fig.update_layout(title={"text": f"Verdict evidence<br><sup>{wrapped}</sup>"}, height=160 + 28 * len(rows),
                      margin={"t": 120})
    return fig


# ---------------------------------------------------------------- rendering


def render(data: ReportData) -> str:
    """The report as one self-contained HTML page (plotly.js inlined once)."""
    figures = [
        f for f in (timeline_figure(data), metrics_figure(data), shadow_figure(data), evidence_figure(data))
        if f is not None
    ]
    divs = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
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
    path.write_text(render(data), encoding="utf-8")
    return path
