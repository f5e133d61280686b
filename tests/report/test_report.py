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


def test_render_is_self_contained_html_with_plots(rollback_execution, tmp_path):
    ex = rollback_execution
    session, arn = ex.session, ex.arn
    path = report.write_report(arn, tmp_path / "r.html", client=session.client)
    html = path.read_text()
    assert "<script src=" not in html and "<link" not in html  # offline: plotly.js inlined, nothing fetched
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
