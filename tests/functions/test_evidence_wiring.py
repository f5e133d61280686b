"""The statistical guardrails wired into the steps: the sequential shadow verdict on CloudWatch counts, the
capture evidence (ground-truth pairing) at the end, and the drift / data-quality check with its notification.
moto answers S3, CloudWatch, SNS and SageMaker in-process."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from fn_support import BUCKET, ENDPOINT, TOPIC, evaluation

from functions.capture import capture_line, ground_truth_line
from functions.config import load_settings, settings_from
from functions.evaluation import ModelEvaluation
from functions.models import CheckDataInput, GuardrailOverrides, ShadowState, Verdict
from functions.steps import shadow_analysis
from functions.steps.data_checks import check_data
from functions.steps.shadow_analysis import facet_cut, policy_for, sequential_analysis
from functions.steps.shadow_test import variant_actions

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_policy_from_template_settings_then_deployment_json() -> None:
    settings = settings_from({"SHADOW_ALPHA": "0.01", "SHADOW_ERROR_MARGIN": "0.02", "SHADOW_MIN_INVOCATIONS": "40"})
    policy = policy_for(settings)
    assert (policy.alpha, policy.error_margin, policy.min_requests) == (0.01, 0.02, 40)
    tighter = policy_for(settings, GuardrailOverrides(alpha=0.001, on_inconclusive="Promote"))
    assert tighter.alpha == 0.001 and tighter.error_margin == 0.02 and tighter.on_inconclusive == "Promote"
    with pytest.raises(ValueError):
        GuardrailOverrides(alpha=0.9)


def test_numeric_facet_cut_from_training_group_labels() -> None:
    doc = evaluation(features=["age", "balance"])
    doc["bias"][0]["groups"] = [
        {"group": g, "count": 10, "selection_rate": 0.1, "base_rate": 0.1} for g in ("<30", "30-59", "60+")
    ]
    model = ModelEvaluation.model_validate(doc)
    feature, cut = facet_cut(model.bias[0], model)
    assert feature == "age"
    assert [cut.label(v) for v in (18, 29, 30, 59, 60, 95)] == ["<30", "<30", "30-59", "30-59", "60+", "60+"]


def _put(cw, variant: str, n: int, failures: int, latency: float, jitter: float, seed: int) -> None:
    """One request per second-bucket position: n requests over n/4 seconds (4 per 1 s period)."""
    rng = random.Random(seed)
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
    data = []
    for i in range(n):
        ts = START + timedelta(seconds=i // 4, milliseconds=(i % 4) * 200)
        data.append({"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": ts,
                     "Value": 1.0 if i < failures else 0.0, "StorageResolution": 1})
        data.append({"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": ts, "Unit": "Microseconds",
                     "Value": latency * (1 + rng.uniform(-jitter, jitter)), "StorageResolution": 1})
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[i : i + 500])


def _shadow(**extra) -> ShadowState:
    settings = settings_from({"SHADOW_MIN_INVOCATIONS": "100", "SHADOW_MIN_LATENCY_SAMPLES": "20",
                              "SHADOW_ERROR_MARGIN": "0.02"})
    fields = dict(
        status="RUNNING", experiment_name="exp", endpoint_name=ENDPOINT, production_variant="prod",
        shadow_variant="shadow", shadow_model="m-2", sampling_percent=100, method="msprt",
        policy=policy_for(settings).model_dump(mode="json"), starts_at=START.isoformat(),
    )
    return ShadowState(**(fields | extra))


@pytest.fixture
def one_second_periods(monkeypatch):
    monkeypatch.setenv("METRIC_PERIOD_SECONDS", "1")
    from functions.config import reset_settings

    reset_settings()
    return load_settings()


def test_erroring_shadow_is_rejected_early_with_its_numbers(aws, one_second_periods) -> None:
    cw = boto3.client("cloudwatch")
    _put(cw, "prod", 400, 0, 2000, 0.1, 1)
    _put(cw, "shadow", 400, 60, 2000, 0.1, 2)
    result = sequential_analysis(_shadow(), START, START + timedelta(seconds=100), one_second_periods, final=False)
    assert result.verdict is Verdict.REJECT and result.decisive and result.method == "msprt"
    assert result.shadow.errors_5xx == 60 and result.shadow.invocations == 400
    metric = next(m for m in result.details["verdict"]["metrics"] if m["metric"] == "error_rate")
    assert metric["decision"] == "REJECT" and metric["threshold"] == pytest.approx(40)  # alpha split over 2 metrics
    assert "error rate" in result.reasons[0] and "alpha=0.05" in result.reasons[0]


def test_equal_shadow_is_promoted_and_no_data_is_explicit(aws, one_second_periods) -> None:
    cw = boto3.client("cloudwatch")
    _put(cw, "prod", 400, 0, 2000, 0.05, 3)
    _put(cw, "shadow", 400, 0, 2000, 0.05, 4)
    result = sequential_analysis(_shadow(), START, START + timedelta(seconds=100), one_second_periods, final=False)
    assert result.verdict is Verdict.PROMOTE and result.decisive, result.reasons
    assert {m["decision"] for m in result.details["verdict"]["metrics"]} == {"PROMOTE"}
    early = sequential_analysis(
        _shadow(shadow_variant="nobody"), START, START + timedelta(seconds=100), one_second_periods, final=False
    )
    assert early.verdict is Verdict.INCONCLUSIVE and not early.decisive
    assert early.details["verdict"]["decision"] == "NO_DATA"
    end = sequential_analysis(
        _shadow(shadow_variant="nobody"), START, START + timedelta(seconds=100), one_second_periods, final=True
    )
    assert end.verdict is Verdict.INCONCLUSIVE and end.decisive and "NO_DATA" in end.reasons[0]
    assert end.details["verdict"]["action"] == "Remove"


def _capture(s3, variant: str, lines: list[str]) -> None:
    key = f"capture/{ENDPOINT}/{variant}/{START:%Y/%m/%d/%H}/00-00-000-x.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode())


def test_lower_auc_shadow_is_rejected_through_ground_truth(aws, one_second_periods) -> None:
    """Same errors and latency (CloudWatch cannot tell), worse ranking: the paired DeLong test rejects."""
    s3, cw = boto3.client("s3"), boto3.client("cloudwatch")
    s3.create_bucket(Bucket=BUCKET)
    _put(cw, "prod", 400, 0, 2000, 0.05, 5)
    _put(cw, "shadow", 400, 0, 2000, 0.05, 6)
    rng = random.Random(9)
    prod, shadow, truth = [], [], []
    at = (START + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in range(400):
        label = int(rng.random() < 0.3)
        good = min(max(0.25 + (0.35 if label else -0.1) + rng.gauss(0, 0.15), 0.01), 0.99)
        bad = min(max(0.25 + (0.1 if label else 0.0) + rng.gauss(0, 0.2), 0.01), 0.99)
        rid = f"req-{i}"
        prod.append(capture_line(f"p{i}", "30,1", f"{good:.4f}", inference_id=rid, inference_time=at))
        shadow.append(capture_line(f"s{i}", "30,1", f"{bad:.4f}", inference_id=rid, inference_time=at))
        truth.append(ground_truth_line(rid, label))
    _capture(s3, "prod", prod)
    _capture(s3, "shadow", shadow)
    s3.put_object(Bucket=BUCKET, Key=f"truth/{ENDPOINT}/{START:%Y/%m/%d/%H}/labels.jsonl", Body="\n".join(truth))
    state = _shadow(capture_uri=f"s3://{BUCKET}/capture", ground_truth_uri=f"s3://{BUCKET}/truth")
    # Before the end the fixed-sample paired tests are not acted on (one look only, statistics audit §3 #7):
    # the sequential PROMOTE is withheld and the test goes on.
    early = sequential_analysis(state, START, START + timedelta(seconds=100), one_second_periods, final=False)
    assert not early.decisive and "single look at the end" in early.details["withheld"]
    result = sequential_analysis(state, START, START + timedelta(seconds=100), one_second_periods, final=True)
    assert result.verdict is Verdict.REJECT and result.decisive, result.reasons
    paired = result.details["evidence"]["paired"]
    assert paired["labeled"] == 400 and paired["auc"]["shadow"] < paired["auc"]["production"]
    auc = next(m for m in result.details["verdict"]["metrics"] if m["metric"] == "paired_auc")
    assert auc["decision"] == "REJECT" and auc["p_value"] < 0.05
    assert any("agreement" in r for r in result.reasons)


def test_inconclusive_follows_the_configured_default() -> None:
    running = _shadow()
    assert variant_actions(running, Verdict.INCONCLUSIVE) == {"shadow": "Remove", "prod": "Retain"}
    promote = running.model_copy(update={"policy": {**running.policy, "on_inconclusive": "Promote"}})
    assert variant_actions(promote, Verdict.INCONCLUSIVE) == {"shadow": "Promote", "prod": "Remove"}


# --- the drift / data-quality check -------------------------------------------------------------------------


def _serving_endpoint(s3, eval_doc: dict) -> None:
    sm = boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="models/m/1/evaluation.json", Body=json.dumps(eval_doc))
    sm.create_model(ModelName="m-1", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/models/m/1/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="m-1-cfg", ProductionVariants=[{
        "VariantName": "v-m-1", "ModelName": "m-1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="m-1-cfg")


@pytest.fixture
def baseline_eval() -> dict:
    """Two numeric features with a narrow training distribution (age 30-50, balance 0-1000)."""
    def numeric(column: str, low: float, high: float) -> dict:
        step = (high - low) / 10
        return {"kind": "numeric", "column": column, "count": 1000, "missing": 0, "mean": (low + high) / 2,
                "std": step * 3, "min": low, "max": high, "quantiles": {},
                "bin_edges": [low + step * k for k in range(1, 10)], "bin_proportions": [0.1] * 10}

    doc = evaluation()
    doc["baseline"]["features"] = {"age": numeric("age", 30, 50), "balance": numeric("balance", 0, 1000)}
    return doc


def _traffic(s3, rows: list[str]) -> None:
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Scores as in training: 10 % above 0.5.
    lines = [capture_line(f"e{i}", row, "0.7" if i % 10 == 0 else "0.2", inference_id=f"r{i}", inference_time=at)
             for i, row in enumerate(rows)]
    now = datetime.now(UTC)
    s3.put_object(Bucket=BUCKET, Key=f"capture/{ENDPOINT}/v-m-1/{now:%Y/%m/%d/%H}/a.jsonl", Body="\n".join(lines))


def _notifications(sqs_url: str) -> list[dict]:
    sqs = boto3.client("sqs")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=sqs_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        out += [json.loads(m["Body"]) for m in got]


@pytest.fixture
def topic_queue(aws) -> str:
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    arn = sns.create_topic(Name=TOPIC.rsplit(":", 1)[-1])["TopicArn"]
    url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return url


def test_drifted_traffic_is_notified_with_its_top_features(topic_queue, baseline_eval) -> None:
    s3 = boto3.client("s3")
    _serving_endpoint(s3, baseline_eval)
    rng = random.Random(1)
    _traffic(s3, [f"{rng.uniform(42, 51):.1f},{rng.uniform(0, 1000):.0f}" for _ in range(300)])  # older
    result = check_data(CheckDataInput(), load_settings())
    assert result.status == "BREACH" and result.flags == ["DRIFT"], result.explanation
    assert result.top_features[0] == "age" and result.model == "m-1" and result.variant == "v-m-1"
    messages = _notifications(topic_queue)
    assert [m["MessageAttributes"]["outcome"]["Value"] for m in messages] == ["DRIFT"]
    assert "top: age" in messages[0]["Message"] and '"psi"' in messages[0]["Message"]


def test_malformed_and_out_of_range_traffic_is_a_data_quality_breach(topic_queue, baseline_eval) -> None:
    s3 = boto3.client("s3")
    _serving_endpoint(s3, baseline_eval)
    rng = random.Random(2)
    rows = [f"{rng.uniform(30, 50):.1f},{rng.uniform(0, 1000):.0f}" for _ in range(200)]
    rows += ["not-a-number,10"] * 30 + ["40,1e9"] * 30 + ["40"] * 20
    _traffic(s3, rows)
    result = check_data(CheckDataInput(), load_settings())
    assert "DATA_QUALITY" in result.flags and result.rows == 280
    assert result.data_quality["malformed_rows"] >= 50
    messages = _notifications(topic_queue)
    body = next(m["Message"] for m in messages if m["MessageAttributes"]["outcome"]["Value"] == "DATA_QUALITY")
    assert "examples" in body and "breach the baseline" in body


def test_clean_traffic_is_ok_and_silence_is_no_data(topic_queue, baseline_eval) -> None:
    s3 = boto3.client("s3")
    _serving_endpoint(s3, baseline_eval)
    assert check_data(CheckDataInput(), load_settings()).status == "NO_DATA"
    rng = random.Random(3)
    _traffic(s3, [f"{rng.uniform(30, 50):.1f},{rng.uniform(0, 1000):.0f}" for _ in range(300)])
    result = check_data(CheckDataInput(), load_settings())
    assert result.status == "OK" and result.flags == [] and result.notifications == []
    assert _notifications(topic_queue) == []


def test_no_endpoint_is_skipped(aws) -> None:
    result = check_data(CheckDataInput(), load_settings())
    assert result.status == "SKIPPED" and "no serving model" in result.explanation


def test_handler_accepts_a_scheduled_event(aws, monkeypatch) -> None:
    from fn_support import FakeContext

    from functions.handlers.check_data import handler

    event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-11-23T12:00:00Z", "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {}}
    out = handler(event, FakeContext())
    assert out["status"] == "SKIPPED" and out["endpoint_name"] == ENDPOINT


def test_shadow_analysis_module_keeps_the_threshold_method() -> None:
    assert load_settings().shadow_method == "thresholds"  # code default; the template selects msprt
    assert shadow_analysis.analyze is not None


def test_mostly_malformed_shadow_traffic_ends_inconclusive_not_promoted(aws, one_second_periods, baseline_eval) -> None:
    """CloudWatch alone would PROMOTE; the capture shows most requests were junk, so the end is INCONCLUSIVE."""
    s3, cw = boto3.client("s3"), boto3.client("cloudwatch")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="models/m/2/evaluation.json", Body=json.dumps(baseline_eval))
    _put(cw, "prod", 400, 0, 2000, 0.05, 7)
    _put(cw, "shadow", 400, 0, 2000, 0.05, 8)
    at = (START + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = ["not-a-number,10" if i % 10 < 7 else "40,500" for i in range(200)]
    for variant in ("prod", "shadow"):
        _capture(s3, variant, [capture_line(f"{variant}{i}", row, "0.2", inference_id=f"r{i}", inference_time=at)
                               for i, row in enumerate(rows)])
    state = _shadow(capture_uri=f"s3://{BUCKET}/capture", evaluation_uri=f"s3://{BUCKET}/models/m/2/evaluation.json")
    early = sequential_analysis(state, START, START + timedelta(seconds=100), one_second_periods, final=False)
    assert early.verdict is Verdict.INCONCLUSIVE and not early.decisive  # PROMOTE withheld: keep watching
    assert "malformed" in early.details["withheld"]
    end = sequential_analysis(state, START, START + timedelta(seconds=100), one_second_periods, final=True)
    assert end.verdict is Verdict.INCONCLUSIVE and end.decisive
    assert end.details["verdict"]["blocked_by"] and "DATA_QUALITY" in end.details["evidence"]["flags"]


def _put_fleet(cw, config: str, n: int, failures: int, seed: int) -> None:
    rng = random.Random(seed)
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"},
            {"Name": "EndpointConfigName", "Value": config}]
    data = []
    for i in range(n):
        ts = START + timedelta(seconds=i // 4, milliseconds=(i % 4) * 200)
        data.append({"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": ts,
                     "Value": 1.0 if i % 10 < failures else 0.0, "StorageResolution": 1})
        data.append({"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": ts, "Unit": "Microseconds",
                     "Value": 2000 * (1 + rng.uniform(-0.05, 0.05)), "StorageResolution": 1})
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[i : i + 500])


def test_canary_phase_is_judged_fleet_against_fleet(aws, one_second_periods) -> None:
    from functions.steps.shadow_analysis import canary_analysis

    cw = boto3.client("cloudwatch")
    _put_fleet(cw, "cfg-old", 400, 0, 1)
    _put_fleet(cw, "cfg-bad", 400, 2, 2)  # 20 % of the new fleet's requests fail
    _put_fleet(cw, "cfg-good", 400, 0, 3)
    settings = settings_from({"METRIC_PERIOD_SECONDS": "1", "SHADOW_MIN_LATENCY_SAMPLES": "20",
                              "SHADOW_ERROR_MARGIN": "0.02"})
    window = (START, START + timedelta(seconds=100))
    bad = canary_analysis(ENDPOINT, ("cfg-old", "AllTraffic"), ("cfg-bad", "AllTraffic"), *window, settings)
    assert bad.verdict is Verdict.REJECT and bad.method == "msprt-canary" and bad.shadow.errors_5xx == 80
    good = canary_analysis(ENDPOINT, ("cfg-old", "AllTraffic"), ("cfg-good", "AllTraffic"), *window, settings)
    assert good.verdict is Verdict.PROMOTE and good.decisive, good.reasons


def test_shadow_refusing_requests_production_answered_is_rejected(aws, one_second_periods) -> None:
    """Issue 11: the shadow returns 4XX on requests production answered: REJECT, not INCONCLUSIVE."""
    cw = boto3.client("cloudwatch")
    _put(cw, "prod", 400, 0, 2000, 0.1, 1)
    _put(cw, "shadow", 400, 0, 2000, 0.1, 2)
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "shadow"}]
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[
        {"MetricName": "Invocation4XXErrors", "Dimensions": dims, "Timestamp": START + timedelta(seconds=3),
         "Value": 1.0, "StorageResolution": 1},
    ])
    result = sequential_analysis(_shadow(), START, START + timedelta(seconds=100), one_second_periods, final=False)
    assert result.verdict is Verdict.REJECT and result.decisive
    assert "4XX" in result.reasons[0] and "production answered" in result.reasons[0]


def test_plan_from_the_hour_before_warns_when_the_test_cannot_decide(aws, one_second_periods) -> None:
    """Item 6: production's traffic before the test gives the plan; 100 requests/h cannot decide in 100 s."""
    cw = boto3.client("cloudwatch")
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "prod"}]
    before = [
        {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": START - timedelta(minutes=50 - i // 3),
         "Value": 0.0}
        for i in range(100)
    ]
    for i in range(0, len(before), 500):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=before[i : i + 500])
    _put(cw, "prod", 400, 0, 2000, 0.1, 1)
    _put(cw, "shadow", 400, 0, 2000, 0.1, 2)
    state = _shadow(ends_at=(START + timedelta(seconds=100)).isoformat())
    result = sequential_analysis(state, START, START + timedelta(seconds=100), one_second_periods, final=False)
    plan = result.details["plan"]
    assert plan["decidable"] is False and plan["production_rps"] == pytest.approx(100 / 3600)
    assert any(r.startswith("WARNING: this test cannot decide") for r in result.reasons)


def test_tail_margin_is_a_setting_of_its_own() -> None:
    """The p99-exceedance margin reaches the verdict from the template (ShadowTailMargin -> SHADOW_TAIL_MARGIN):
    the local cloud's one-process emulator needs a wider one than AWS's 1 pp default."""
    from functions.steps.shadow_analysis import policy_for

    assert policy_for(settings_from({})).tail_margin == 0.01
    assert policy_for(settings_from({"SHADOW_TAIL_MARGIN": "0.03"})).tail_margin == 0.03
