import pytest

from guardrail import report


def test_collect_reads_path_metrics_alarms_and_notification(rollback_execution):
    ex = rollback_execution
    session, arn = ex.session, ex.arn
    data = report.collect(arn, client=session.client)
    assert data.status == "SUCCEEDED"
    assert data.outcome == "ROLLED_BACK"
    assert (data.endpoint, data.new_config, data.previous_config) == (ex.endpoint, ex.new, ex.old)
    assert [v.name for v in data.visits] == [
        "ParseUpload", "EnsureAlarms", "Deploy", "WaitForDeployment", "CheckDeployment", "DeploymentOutcome", "RolledBack",
        "Notify", "Done",
    ]
    wait = data.visits[3]
    assert (wait.exited - wait.entered).total_seconds() >= 1
    configs = {s.dimensions["EndpointConfigName"] for s in data.series if s.metric == "Invocations"}
    assert configs == {ex.old, ex.new}
    new_errors = next(s for s in data.series if s.metric == "Invocation5XXErrors" and s.dimensions["EndpointConfigName"] == ex.new)
    assert sum(new_errors.values) / len(new_errors.values) == pytest.approx(0.4)
    assert {a.name: a.state for a in data.alarms} == {ex.err_alarm: "ALARM", ex.lat_alarm: "OK"}
    err = next(a for a in data.alarms if a.name == ex.err_alarm)
    assert err.history_source == "describe_alarm_history"
    assert [state for _, state in err.transitions] == ["INSUFFICIENT_DATA", "ALARM"]
    assert [m.label for m in data.moments if m.label in ("deploy", "rollback detected", "rolled back", "notify")] == [
        "deploy", "rollback detected", "rolled back", "notify"
    ]
    assert any(m.label == "ALARM Invocation5XXErrors" for m in data.moments)
    assert data.notifications[0].subject.startswith("Guardrail: ROLLED_BACK")


def test_render_writes_html_with_plots_and_one_shared_plotly_js(rollback_execution, tmp_path):
    ex = rollback_execution
    session, arn = ex.session, ex.arn
    path = report.write_report(arn, tmp_path / "r.html", client=session.client)
    html = path.read_text()
    # offline: plotly.js from the one copy beside the reports, nothing fetched from the network
    assert html.count('src="plotly.min.js"') == 1 and "https://" not in html.split("<body>")[0] and "<link" not in html
    assert (tmp_path / "plotly.min.js").stat().st_size > 3_000_000
    assert html.count("Plotly.newPlot") == 2  # timeline + metrics (no shadow in this execution)
    assert "ROLLED_BACK" in html and ex.err_alarm in html and "Rolled back: 5XX alarm" in html


def test_unknown_execution_is_a_clear_error(rollback_execution):
    ex = rollback_execution
    session, arn = ex.session, ex.arn
    with pytest.raises(report.ReportError, match="cannot read execution"):
        report.collect(arn.replace("exec-rollback", "nope"), client=session.client)


def test_failed_visit_and_shadow_evidence_are_rendered():
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        {"type": "ExecutionStarted", "timestamp": t0, "executionStartedEventDetails": {}},
        {"type": "TaskStateEntered", "timestamp": t0, "stateEnteredEventDetails": {"name": "ParseUpload"}},
        {"type": "LambdaFunctionFailed", "timestamp": t0 + timedelta(seconds=1),
         "lambdaFunctionFailedEventDetails": {"error": "InvalidTrigger", "cause": "key outside prefix"}},
        {"type": "TaskStateExited", "timestamp": t0 + timedelta(seconds=1),
         "stateExitedEventDetails": {"name": "ParseUpload", "output": "{\"error\": {}}"}},
    ]
    visits = report.parse_history(events)
    assert visits[0].failed and visits[0].error == "InvalidTrigger" and visits[0].retries == 0
    retried = report.parse_history([
        events[1],
        {"type": "LambdaFunctionFailed", "timestamp": t0, "lambdaFunctionFailedEventDetails": {"error": "Throttled"}},
        {"type": "LambdaFunctionSucceeded", "timestamp": t0, "lambdaFunctionSucceededEventDetails": {}},
        events[3],
    ])
    assert not retried[0].failed and retried[0].retries == 1 and retried[0].error == "Throttled"
    data = report.ReportData(
        execution_arn="arn:x", name="x", status="SUCCEEDED", start=t0, stop=t0 + timedelta(seconds=2),
        outcome="PROMOTED", endpoint=None, new_config=None, previous_config=None, error=None, document={},
        visits=visits, moments=[], period=1, series=[], alarms=[], notifications=[],
        shadow={"verdict": "PROMOTE", "analysis": {"production": {"variant": "AllTraffic", "auc": 0.78, "error_rate": 0.0},
                                                   "shadow": {"variant": "shadow", "auc": 0.80, "error_rate": 0.0}}},
    )
    fig = report.shadow_figure(data)
    assert [list(t.y) for t in fig.data] == [[0.78, 0.80], [0.0, 0.0]]
    assert "verdict PROMOTE" in fig.layout.title.text
    assert report.render(data).count("Plotly.newPlot") == 3


def test_each_report_kind_says_why_in_one_line(report_kinds):
    client = report_kinds.session.client
    rollback = report.collect(report_kinds.arns["rollback"], client=client)
    assert rollback.reason.startswith("One or more configured alarm") and "5xx" in rollback.reason
    deployed = report.collect(report_kinds.arns["deployment"], client=client)
    assert deployed.outcome == "DEPLOYED_UNVERIFIED"
    assert deployed.reason == ("Not verified: the new fleet served 50 request(s), the old fleet 30 "
                               "(at least 100 needed to verify it).")
    assert deployed.fleets["new_fleet_requests"] == 50
    html = report.render(deployed)
    assert 'class="badge warn"' in html and "new fleet 50, old fleet 30" in html and "not verified" in html
    promote = report.collect(report_kinds.arns["shadow-promote"], client=client)
    assert promote.reason.startswith("Shadow verdict PROMOTE: PROMOTE: bank-marketing-v6-shadow vs")
    assert "latency x1.02" in promote.reason


def test_shadow_report_has_both_fleets_metrics_and_the_config_that_served_before(report_kinds):
    k = report_kinds  # conftest's names through the fixture: `import conftest` may find another folder's
    data = report.collect(k.arns["shadow-reject"], client=k.session.client)
    assert data.previous_config == k.old
    fleets = {(s.metric, s.dimensions["VariantName"]) for s in data.series
              if s.dimensions.get("EndpointConfigName") == k.ie_config}
    assert fleets == {(m, v) for m in ("Invocations", "Invocation5XXErrors", "ModelLatency")
                      for v in (k.prod_variant, k.shadow_variant)}
    fig = report.shadow_figure(data)
    assert [a.text for a in fig.layout.annotations] == [
        "requests", "5XX errors", "5XX rate", "mean ModelLatency (ms)"]
    assert list(fig.data[1].text) == ["0", "0"]  # a zero is written, not an invisible bar


def test_no_alarm_transition_before_the_alarm_existed(report_kinds):
    client = report_kinds.session.client
    data = report.collect(report_kinds.arns["shadow-promote"], client=client)
    created = {a["AlarmName"]: report._utc(a["AlarmConfigurationUpdatedTimestamp"])
               for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert data.alarms
    for alarm in data.alarms:
        assert alarm.transitions[0][0] >= created[alarm.name], (alarm.name, alarm.transitions)


def test_moment_labels_get_rows_so_they_never_overlap():
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [report.Moment(at=t0 + timedelta(seconds=s), label=label) for s, label in
               ((0, "deploy"), (0.3, "rollback detected"), (0.4, "rolled back"), (0.5, "notify"), (9, "promoted"))]
    levels = report._label_levels(moments, (t0, t0 + timedelta(seconds=10)))
    assert levels == [0, 1, 2, 0, 0]  # "notify" fits after "deploy" on the first row


def test_evidence_table_is_tall_enough_for_its_rows(report_kinds):
    data = report.collect(report_kinds.arns["shadow-reject"], client=report_kinds.session.client)
    fig = report.evidence_figure(data)
    rows = len(fig.data[0].cells.values[0])
    assert fig.layout.height - fig.layout.margin.t >= 30 * (rows + 1)
