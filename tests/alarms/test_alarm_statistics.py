"""Statistics, percentiles, comparison operators, exact dimensions and period alignment."""

from __future__ import annotations

import logging

import pytest
from alarms_support import T0_EPOCH, alarm, dims, put, state

from local.alarms.definition import AlarmDefinition
from local.alarms.metrics import BackendMetricIndex
from local.alarms.semantics import percentile

# Skewed latencies (µs): 95 fast requests and 5 very slow ones in one 10-s period.
SKEWED = [1000.0] * 95 + [100_000.0] * 5  # Average 5950, p50 1000, p90 1000, p99 100000


def test_p99_sees_the_tail_that_the_average_hides(cw, evaluator, uid):
    metric, d = f"{uid}-ModelLatency", dims(uid)
    put(cw, metric, d, [(1 + i * 0.05, v) for i, v in enumerate(SKEWED)])
    for name, stat in [
        ("avg", {"Statistic": "Average"}),
        ("p99", {"ExtendedStatistic": "p99"}),
        ("p90", {"ExtendedStatistic": "p90"}),
        ("p99.9", {"ExtendedStatistic": "p99.9"}),
        ("p50", {"ExtendedStatistic": "p50"}),
    ]:
        alarm(cw, f"{uid}-{name}", metric, d, Threshold=50_000.0, **stat)
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert state(cw, f"{uid}-avg") == "OK"
    assert state(cw, f"{uid}-p99") == "ALARM"
    assert state(cw, f"{uid}-p99.9") == "ALARM"
    assert state(cw, f"{uid}-p90") == "OK"
    assert state(cw, f"{uid}-p50") == "OK"
    reason = cw.describe_alarms(AlarmNames=[f"{uid}-avg"])["MetricAlarms"][0]["StateReason"]
    assert "[5950.0 (23/11/26 12:00:00)] was not greater than or equal to the threshold (50000.0)" in reason


@pytest.mark.parametrize(
    "stat,threshold,expected",
    [
        ("SampleCount", 4.0, "ALARM"),  # 4 samples
        ("SampleCount", 5.0, "OK"),
        ("Sum", 10.0, "ALARM"),  # 1+2+3+4
        ("Sum", 10.5, "OK"),
        ("Average", 2.5, "ALARM"),
        ("Average", 2.6, "OK"),
        ("Minimum", 1.0, "ALARM"),
        ("Minimum", 1.1, "OK"),
        ("Maximum", 4.0, "ALARM"),
        ("Maximum", 4.1, "OK"),
    ],
)
def test_basic_statistics(cw, evaluator, uid, stat, threshold, expected):
    metric, d = f"{uid}-m", dims(uid)
    put(cw, metric, d, [(1, 1.0), (2, 2.0), (3, 3.0), (59.9, 4.0), (60.0, 100.0)])  # 100.0: next minute
    alarm(cw, f"{uid}-a", metric, d, Period=60, Statistic=stat, Threshold=threshold)
    evaluator.evaluate_once(now=T0_EPOCH + 60.5)  # a standard-resolution alarm: complete minutes only
    assert state(cw, f"{uid}-a") == expected


@pytest.mark.parametrize(
    "operator,expected",  # value vs threshold: below (1.0), equal (2.0), above (3.0) the threshold 2.0
    [
        ("GreaterThanOrEqualToThreshold", ("OK", "ALARM", "ALARM")),
        ("GreaterThanThreshold", ("OK", "OK", "ALARM")),
        ("LessThanThreshold", ("ALARM", "OK", "OK")),
        ("LessThanOrEqualToThreshold", ("ALARM", "ALARM", "OK")),
    ],
)
def test_comparison_operators(cw, evaluator, uid, operator, expected):
    for label, value in zip(("below", "equal", "above"), (1.0, 2.0, 3.0), strict=True):
        metric = f"{uid}-{label}"
        put(cw, metric, dims(uid), [(1, value)])
        alarm(cw, f"{uid}-{label}", metric, dims(uid), Threshold=2.0, ComparisonOperator=operator)
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    got = tuple(state(cw, f"{uid}-{label}") for label in ("below", "equal", "above"))
    assert got == expected


def test_dimensions_must_match_exactly(cw, evaluator, uid):
    """A metric with EndpointConfigName is a different metric from the one without it."""
    metric = f"{uid}-Invocation5XXErrors"
    put(cw, metric, dims(uid, config="green"), [(1, 1.0), (2, 1.0)])  # the new fleet fails
    put(cw, metric, dims(uid), [(1, 0.0), (2, 0.0), (3, 0.0)])  # the variant-wide series is clean
    alarm(cw, f"{uid}-green", metric, dims(uid, config="green"), TreatMissingData="notBreaching")
    alarm(cw, f"{uid}-blue", metric, dims(uid, config="blue"), TreatMissingData="notBreaching")
    alarm(cw, f"{uid}-variant", metric, dims(uid), TreatMissingData="notBreaching")
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert state(cw, f"{uid}-green") == "ALARM"
    assert state(cw, f"{uid}-blue") == "OK"  # no data for it at all: notBreaching
    assert state(cw, f"{uid}-variant") == "OK"


def test_high_resolution_periods_align_to_boundaries(cw, strict_evaluator, uid):
    """Period 20: datapoints at 19 s and 21 s fall in different periods ([0,20) and [20,40))."""
    metric, d = f"{uid}-m", dims(uid)
    put(cw, metric, d, [(19, 10.0), (21, 0.0), (39, 0.0)])
    alarm(cw, f"{uid}-a", metric, d, Period=20, Statistic="Maximum", Threshold=5.0)
    strict_evaluator.evaluate_once(now=T0_EPOCH + 20.5)  # the last complete period is [0, 20): max 10
    assert state(cw, f"{uid}-a") == "ALARM"
    strict_evaluator.evaluate_once(now=T0_EPOCH + 40.5)  # now [20, 40): max 0
    assert state(cw, f"{uid}-a") == "OK"


def test_open_high_resolution_period_counts_once_it_has_data(cw, evaluator, strict_evaluator, uid):
    metric, d = f"{uid}-m", dims(uid)
    put(cw, metric, d, [(1, 0.0), (12, 1.0)])  # [10, 20) is still open at 15 s
    alarm(cw, f"{uid}-partial", metric, d, TreatMissingData="notBreaching")
    strict_evaluator.evaluate_once(now=T0_EPOCH + 15)
    assert state(cw, f"{uid}-partial") == "OK"  # only [0, 10) is complete: 0.0
    evaluator.evaluate_once(now=T0_EPOCH + 15)
    assert state(cw, f"{uid}-partial") == "ALARM"


def test_statistic_sets_count_for_basic_statistics(cw, evaluator, uid):
    metric, d = f"{uid}-m", dims(uid)
    cw.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": d,
                "Timestamp": T0_DATETIME(1),
                "StorageResolution": 1,
                "StatisticValues": {"SampleCount": 20, "Sum": 3, "Minimum": 0, "Maximum": 1},
            }
        ],
    )
    alarm(cw, f"{uid}-a", metric, d, Threshold=0.1)  # Average = 3/20 = 0.15
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert state(cw, f"{uid}-a") == "ALARM"


def test_out_of_process_reader_uses_get_metric_data(cw, evaluator, uid, monkeypatch):
    monkeypatch.setattr(BackendMetricIndex, "backend_for", staticmethod(lambda alarm: None))
    metric, d = f"{uid}-m", dims(uid)
    put(cw, metric, d, [(1, 0.0), (2, 1.0)])
    alarm(cw, f"{uid}-a", metric, d, Threshold=0.5)
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert state(cw, f"{uid}-a") == "ALARM"  # Average 0.5 over [0, 10)
    put(cw, metric, d, [(11, 0.0)])
    evaluator.evaluate_once(now=T0_EPOCH + 20)
    assert state(cw, f"{uid}-a") == "OK"


def test_metric_math_alarms_are_evaluated(cw, evaluator, uid, caplog):
    """Metric math is evaluated (tests/alarms/test_alarm_metric_math.py has the semantics)."""
    put(cw, "Invocations", dims(uid), [(1, 1.0)])
    cw.put_metric_alarm(
        AlarmName=f"{uid}-math",
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[
            {"Id": "e1", "Expression": "m1 * 2", "ReturnData": True},
            {
                "Id": "m1",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "Invocations",
                        "Dimensions": dims(uid),
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            },
        ],
    )
    with caplog.at_level(logging.WARNING, logger="local.alarms.evaluator"):
        evaluator.evaluate_once(now=T0_EPOCH + 60)
    assert not any(f"{uid}-math" in r.getMessage() for r in caplog.records)
    assert state(cw, f"{uid}-math") == "ALARM"  # Sum 1.0 * 2 > 1


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 99.9) == 100.0
    assert percentile(values, 50) == 50.0
    assert percentile([7.0], 99) == 7.0


def test_definition_rejects_what_cloudwatch_rejects():
    base = {
        "AlarmName": "a",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a",
        "StateValue": "OK",
        "Namespace": "N",
        "MetricName": "M",
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 2,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    assert AlarmDefinition.model_validate(base).unsupported_reason() is None
    assert (
        "DatapointsToAlarm"
        in AlarmDefinition.model_validate(base | {"DatapointsToAlarm": 3}).unsupported_reason()
    )
    assert "period 45" in AlarmDefinition.model_validate(base | {"Period": 45}).unsupported_reason()
    assert (
        "anomaly"
        in AlarmDefinition.model_validate(
            base | {"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}
        ).unsupported_reason()
    )


def T0_DATETIME(seconds: float):
    from alarms_support import at

    return at(seconds)


def test_reason_names_filled_missing_datapoints():
    from local.alarms.semantics import Datapoint, decide

    base = {
        "AlarmName": "a",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a",
        "StateValue": "OK",
        "Namespace": "N",
        "MetricName": "M",
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 3,
        "Threshold": 3.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "breaching",
    }
    alarm = AlarmDefinition.model_validate(base)
    t0 = T0_EPOCH
    points = [(t0 + 60 * i, None) for i in range(4)] + [(t0 + 240, Datapoint(t0 + 240, 5.0, 1.0))]
    outcome = decide(alarm, points, "OK", t0 + 300)
    assert outcome.state == "ALARM"
    assert outcome.reason == (
        "Threshold Crossed: 1 out of the last 3 datapoints [5.0 (23/11/26 12:04:00)] was greater than the "
        "threshold (3.0) and 2 missing datapoints were treated as [Breaching] "
        "(minimum 3 datapoints for OK -> ALARM transition)."
    )
    lenient = AlarmDefinition.model_validate(base | {"TreatMissingData": "notBreaching"})
    assert decide(lenient, points, "ALARM", t0 + 300).reason == (
        "Threshold Crossed: 2 missing datapoints were treated as [NonBreaching] (threshold 3.0) "
        "(minimum 1 datapoint for ALARM -> OK transition)."
    )
    ignore = AlarmDefinition.model_validate(base | {"TreatMissingData": "ignore"})
    assert decide(ignore, [(t0, None)] * 5, "ALARM", t0 + 300).state is None  # no data: state kept
