"""End to end on the local cloud: the statistical guardrails decide shadow tests on evidence and watch the
serving traffic for drift and bad data.

A cloud of its own (the scenario tests chain on theirs). Its gate lets models within 0.05 AUC of production
through (MaxAucDrop) so that the shadow test, not the offline evaluation, has to catch the subtly worse
model, and the erroring one reaches the shadow stage; its data check looks at the last 12 s of traffic.
"""

import pytest

from guardrail.evidence_scenarios import check_data_now, replay_for, run_upload

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e-evidence"), pytest.mark.timeout(600)]

# 120 s = samconfig [local] ShadowDurationSeconds: the mean-latency verdict needs ~10 metric periods of 10 s locally.
SHADOW = {"strategy": "ALL_AT_ONCE", "shadow": {"enabled": True, "sampling_percent": 100, "duration_seconds": 120}}
RPS = 40


@pytest.fixture(scope="module")
def evidence_cloud(tmp_path_factory):
    from local.cloud import LocalCloud

    handle = LocalCloud.spawn(
        tmp_path_factory.mktemp("evidence-cloud"),
        parameter_overrides={"MaxAucDrop": "0.05", "DataCheckWindowSeconds": "12"},
    )
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def target(evidence_cloud):
    from guardrail.demo import Target

    c = evidence_cloud
    return Target.from_outputs(c.outputs, c.state.state_machines, c.env, c.state.alert_queue_url)


@pytest.fixture(scope="module")
def alerts(target):
    from local.alerts import AlertStream

    return AlertStream(target.env, target.alert_queue_url)


@pytest.fixture(scope="module")
def upload(target, models_dir, data, alerts):
    def _upload(model, version, deployment=SHADOW, rps=RPS, **kw):
        kw.setdefault("timeout", 240.0)  # a promotion waits for the end of the 120 s test (one paired look)
        return run_upload(target, models_dir, data, model=model, version=version, deployment=deployment, rps=rps,
                          alerts=alerts, **kw)

    return _upload


def _why(run) -> str:
    shadow = run.document.get("shadow") or {}
    return "\n".join((shadow.get("analysis") or {}).get("reasons") or [str(run.document.get("error"))])


def _verdict(run) -> dict:
    return run.document["shadow"]["analysis"]["details"]["verdict"]


def _metric(run, name: str) -> dict:
    return next(m for m in _verdict(run)["metrics"] if m["metric"] == name)


def test_first_deployment(upload):
    run = upload("xgb-runnerup", "v1", {"strategy": "ALL_AT_ONCE"}, rps=0)
    assert run.outcome == "DEPLOYED", run.document.get("error")


def test_better_model_is_promoted_on_evidence(upload):
    run = upload("xgb-best", "v2")
    assert run.outcome == "PROMOTED" and run.alert_outcome == "PROMOTED", _why(run)
    assert {m["decision"] for m in _verdict(run)["metrics"]} == {"PROMOTE"}
    error_rate = _metric(run, "error_rate")
    assert error_rate["ci_high"] < error_rate["margin"] and error_rate["shadow_samples"] >= 100
    # The evidence is in the notification: samples, estimates, interval, margin, alpha.
    assert "CI" in run.alert_summary and "alpha=0.05" in run.alert_summary
    assert run.document["shadow"]["analysis"]["details"]["evidence"]["paired"]["pairs"] > 0


def test_equal_model_is_promoted(upload):
    run = upload("xgb-best", "v3")
    assert run.outcome == "PROMOTED", _why(run)
    paired = run.document["shadow"]["analysis"]["details"]["evidence"]["paired"]
    assert paired["agreement"] == pytest.approx(1.0)  # same model: same answer to every request


def test_subtly_worse_model_is_caught_by_ground_truth_pairing(upload, target):
    run = upload("worse", "v4")
    assert run.outcome == "SHADOW_REJECTED", _why(run)
    # CloudWatch sees nothing wrong; a paired test on the same labelled requests does (AUC by DeLong or
    # accuracy by McNemar: whichever has the evidence first on this sample of traffic).
    decisions = {m["metric"]: m["decision"] for m in _verdict(run)["metrics"]}
    assert decisions["error_rate"] != "REJECT", decisions
    rejecting = [name for name, d in decisions.items() if d == "REJECT"]
    assert rejecting and set(rejecting) <= {"paired_auc", "paired_accuracy"}, f"{decisions}: {_why(run)}"
    for name in rejecting:
        metric = _metric(run, name)
        assert metric["p_value"] < 0.05 and metric["difference"] > 0, metric
    assert run.labels_written > 100
    # The HTML report shows the numbers behind the verdict.
    from guardrail.report import collect, evidence_figure, render

    data = collect(run.execution_arn, client=target.client)
    table = evidence_figure(data)
    assert table is not None and "paired_auc" in table.data[0].cells.values[0]
    assert "Verdict evidence" in render(data)


def test_erroring_model_is_rejected_early(upload):
    # Past pre-flight (which would reject it before any endpoint change), so that the shadow test has to catch it.
    run = upload("incompatible", "v5", {**SHADOW, "preflight": False})
    assert run.outcome == "SHADOW_REJECTED", _why(run)
    error_rate = _metric(run, "error_rate")
    assert error_rate["decision"] == "REJECT" and error_rate["msprt"] >= error_rate["threshold"]
    assert run.document["shadow"]["attempts"] < 15  # stopped long before the 120 s window ends (2 s polls)


def test_no_traffic_ends_inconclusive_and_removes_the_shadow(upload):
    run = upload("xgb-best", "v6", {**SHADOW, "shadow": {**SHADOW["shadow"], "duration_seconds": 5}}, rps=0)
    assert run.outcome == "INCONCLUSIVE" and run.alert_outcome == "INCONCLUSIVE", _why(run)
    assert _verdict(run)["decision"] == "NO_DATA" and _verdict(run)["action"] == "Remove"
    assert run.document["shadow"]["actions"][run.document["shadow"]["shadow_variant"]] == "Remove"


def test_biased_model_is_rejected_at_the_gate(upload):
    run = upload("biased", "v7", None, rps=0)
    assert run.outcome == "REJECTED" and run.alert_outcome == "REJECTED"
    error = run.document["error"]
    assert error["Error"] == "ModelRejected" and "disparate impact" in error["Cause"].lower(), error
    assert "CreateModel" not in run.path


def test_drifted_traffic_raises_drift(target, data, alerts):
    replay_for(target, data, rps=40, seconds=6, seed=1, drift={"age": 3.0, "euribor3m": -2.0})
    result = check_data_now(target)
    assert "DRIFT" in result["flags"], result["explanation"]
    assert {"age", "euribor3m"} & set(result["top_features"])
    alert = alerts.wait_for(lambda a: a.outcome == "DRIFT", timeout=15)
    assert "top:" in (alert.payload or {}).get("summary", "")


def test_malformed_and_out_of_range_traffic_raises_data_quality(target, data, alerts):
    # (the drifted rows may still be in the 12 s window: drift and data quality are flagged independently)
    replay_for(target, data, rps=40, seconds=6, seed=2, malformed_fraction=0.3, out_of_range_fraction=0.2)
    result = check_data_now(target)
    assert "DATA_QUALITY" in result["flags"], result["explanation"]
    checks = {b["check"] for b in result["data_quality"]["breaches"]}
    assert "out_of_range" in checks
    alert = alerts.wait_for(lambda a: a.outcome == "DATA_QUALITY", timeout=15)
    assert alert.payload["details"]["data_quality"]["breaches"][0]["examples"]
