"""Alarms on metric math (PutMetricAlarm `Metrics`): the new fleet's 4XX rate relative to the old fleet's."""

from __future__ import annotations

import pytest
from alarms_support import T0_EPOCH, dims, put, state

from local.alarms.definition import AlarmDefinition
from local.alarms.math import MathError, evaluate, parse, parse_queries, returned_series

EXPRESSION = "new - FILL(FILL(old, REPEAT), 0)"


def math_alarm(cw, name: str, uid: str, expression: str = EXPRESSION, **overrides) -> None:
    def stat(qid: str, config: str) -> dict:
        return {
            "Id": qid,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": f"{uid}-4xx",
                    "Dimensions": dims(uid, config),
                },
                "Period": 10,
                "Stat": "Average",
            },
            "ReturnData": False,
        }

    params = {
        "AlarmName": name,
        "EvaluationPeriods": 1,
        "Threshold": 0.05,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "Metrics": [
            stat("new", "green"),
            stat("old", "blue"),
            {
                "Id": "e",
                "Expression": expression,
                "Label": "4XX rate above the old fleet's",
                "ReturnData": True,
            },
        ],
    } | overrides
    cw.put_metric_alarm(**params)


def rates(cw, uid: str, config: str, start: float, values: list[float]) -> None:
    put(cw, f"{uid}-4xx", dims(uid, config), [(start + i * 0.1, v) for i, v in enumerate(values)])


def test_new_fleet_failing_what_the_old_fleet_answers_trips(cw, evaluator, uid):
    math_alarm(cw, f"{uid}-a", uid)
    rates(cw, uid, "green", 1, [1.0] * 10)  # every request 400 on the new fleet
    rates(cw, uid, "blue", 1, [0.0] * 30)
    evaluator.evaluate_once(now=T0_EPOCH + 10.5)
    assert state(cw, f"{uid}-a") == "ALARM"
    reason = cw.describe_alarms(AlarmNames=[f"{uid}-a"])["MetricAlarms"][0]["StateReason"]
    assert "[1.0 (23/11/26 12:00:00)] was greater than or equal to the threshold (0.05)" in reason


def test_clients_own_bad_requests_on_both_fleets_do_not_trip(cw, evaluator, uid):
    math_alarm(cw, f"{uid}-a", uid)
    rates(
        cw, uid, "green", 1, [1.0, 0.0, 0.0, 0.0, 0.0] * 2
    )  # 20 % bad requests from clients, on both fleets
    rates(cw, uid, "blue", 1, [1.0, 0.0, 0.0, 0.0, 0.0] * 6)
    evaluator.evaluate_once(now=T0_EPOCH + 10.5)
    assert state(cw, f"{uid}-a") == "OK"
    # the same 20 % on a plain alarm on the new fleet alone would have blocked the deployment
    plain = f"{uid}-plain"
    cw.put_metric_alarm(
        AlarmName=plain,
        Namespace="AWS/SageMaker",
        MetricName=f"{uid}-4xx",
        Dimensions=dims(uid, "green"),
        Statistic="Average",
        Period=10,
        EvaluationPeriods=1,
        Threshold=0.05,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )
    evaluator.evaluate_once(now=T0_EPOCH + 10.5)
    assert state(cw, plain) == "ALARM"


def test_old_fleet_gone_its_last_rate_is_repeated(cw, evaluator, uid):
    """After the full shift only the new fleet serves: FILL(old, REPEAT) keeps the old fleet's last rate."""
    math_alarm(cw, f"{uid}-a", uid, EvaluationPeriods=1)
    rates(cw, uid, "blue", 1, [1.0, 0.0, 0.0, 0.0] * 5)  # 25 % client errors while it served
    rates(cw, uid, "green", 11, [1.0, 0.0, 0.0, 0.0] * 2)  # next period: the same 25 %, old fleet silent
    evaluator.evaluate_once(now=T0_EPOCH + 20.5)
    assert state(cw, f"{uid}-a") == "OK"
    rates(cw, uid, "green", 21, [1.0, 1.0, 0.0, 0.0] * 2)  # 50 %: 25 points above the old fleet
    evaluator.evaluate_once(now=T0_EPOCH + 30.5)
    assert state(cw, f"{uid}-a") == "ALARM"


def test_no_old_fleet_at_all_counts_as_zero(cw, evaluator, uid):
    math_alarm(cw, f"{uid}-a", uid)
    rates(cw, uid, "green", 1, [1.0, 0.0, 0.0])
    evaluator.evaluate_once(now=T0_EPOCH + 10.5)
    assert state(cw, f"{uid}-a") == "ALARM"


def test_silence_is_not_breaching(cw, evaluator, uid):
    math_alarm(cw, f"{uid}-a", uid)
    rates(cw, uid, "blue", 1, [0.0] * 5)  # old fleet only: the expression has no new-fleet value
    evaluator.evaluate_once(now=T0_EPOCH + 10.5)
    assert state(cw, f"{uid}-a") == "OK"


def test_open_high_resolution_period_is_evaluated_when_it_has_data(cw, evaluator, strict_evaluator, uid):
    math_alarm(cw, f"{uid}-a", uid)
    rates(cw, uid, "green", 1, [1.0] * 5)
    strict_evaluator.evaluate_once(now=T0_EPOCH + 5)  # complete periods only: nothing yet
    assert state(cw, f"{uid}-a") == "OK"
    evaluator.evaluate_once(now=T0_EPOCH + 5)
    assert state(cw, f"{uid}-a") == "ALARM"


def test_unsupported_math_is_reported_and_left_alone(cw, evaluator, uid, caplog):
    math_alarm(cw, f"{uid}-a", uid, expression="ANOMALY_DETECTION_BAND(new)")
    rates(cw, uid, "green", 1, [1.0] * 5)
    evaluator.evaluate_once(now=T0_EPOCH + 10.5)
    assert state(cw, f"{uid}-a") == "INSUFFICIENT_DATA"
    assert "ANOMALY_DETECTION_BAND is not supported" in caplog.text


def test_expression_semantics():
    grid = [0.0, 10.0, 20.0, 30.0]
    series = {"a": {0.0: 1.0, 20.0: 3.0}, "b": {0.0: 0.5, 10.0: 2.0, 20.0: 0.0}}
    assert evaluate(parse("a - b"), series, grid) == {0.0: 0.5, 20.0: 3.0}  # both present only
    assert evaluate(parse("a / b"), series, grid) == {0.0: 2.0}  # division by zero: no value
    assert evaluate(parse("FILL(a, 0)"), series, grid) == {0.0: 1.0, 10.0: 0.0, 20.0: 3.0, 30.0: 0.0}
    assert evaluate(parse("FILL(a, REPEAT)"), series, grid) == {0.0: 1.0, 10.0: 1.0, 20.0: 3.0, 30.0: 3.0}
    assert evaluate(parse("-(a + 1) * 2"), series, grid) == {0.0: -4.0, 20.0: -8.0}
    assert evaluate(parse("ABS(b - 1)"), series, grid) == {0.0: 0.5, 10.0: 1.0, 20.0: 1.0}
    late = {"a": {20.0: 3.0}}
    assert evaluate(parse("FILL(a, REPEAT)"), late, grid) == {20.0: 3.0, 30.0: 3.0}  # nothing before: missing


@pytest.mark.parametrize(
    "metrics,problem",
    [
        (
            [
                {"Id": "e", "Expression": "1", "ReturnData": True},
                {"Id": "f", "Expression": "2", "ReturnData": True},
            ],
            "exactly one",
        ),
        ([{"Id": "E", "Expression": "1", "ReturnData": True}], "lowercase"),
        ([{"Id": "e", "Expression": "STDDEV(e)", "ReturnData": True}], "not supported"),
        ([{"Id": "e", "Expression": "SEARCH('x', 'Sum', 60)", "ReturnData": True}], "cannot read"),
    ],
)
def test_metrics_arrays_putmetricalarm_refuses_are_refused(metrics, problem):
    with pytest.raises(MathError, match=problem):
        parse_queries(metrics)


def test_expressions_may_use_other_expressions_in_any_order():
    queries = parse_queries(
        [
            {"Id": "e2", "Expression": "e1 * 100", "ReturnData": True},
            {"Id": "e1", "Expression": "m - 1", "ReturnData": False},
            {
                "Id": "m",
                "MetricStat": {"Metric": {"Namespace": "n", "MetricName": "x"}, "Period": 60, "Stat": "Sum"},
                "ReturnData": False,
            },
        ]
    )
    assert returned_series(queries, {"m": {0.0: 1.5}}, [0.0]) == {0.0: 50.0}


def test_definition_reports_no_problem_for_a_supported_math_alarm():
    raw = {
        "AlarmName": "a",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a",
        "StateValue": "OK",
        "EvaluationPeriods": 1,
        "Threshold": 0.05,
        "ComparisonOperator": "GreaterThanThreshold",
        "Metrics": [
            {
                "Id": "m",
                "MetricStat": {"Metric": {"Namespace": "n", "MetricName": "x"}, "Period": 7, "Stat": "Sum"},
                "ReturnData": True,
            },
        ],
    }
    assert "period 7" in AlarmDefinition.model_validate(raw).unsupported_reason()
    raw["Metrics"][0]["MetricStat"]["Period"] = 60
    assert AlarmDefinition.model_validate(raw).unsupported_reason() is None
