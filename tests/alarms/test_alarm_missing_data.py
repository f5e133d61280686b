"""TreatMissingData and M of N, row by row from CloudWatch's user guide tables
("How alarm state is evaluated when data is missing"): 5-datapoint evaluation range for N = 3,
0 = not breaching, X = breaching, - = missing; 'keep' = the alarm keeps its current state."""

from __future__ import annotations

import pytest
from alarms_support import T0_EPOCH, alarm, dims, put, state

MODES = ("missing", "ignore", "breaching", "notBreaching")

# (datapoints oldest -> newest, datapoints to alarm, expected state per mode in MODES order)
ROWS = [
    ("0-X-X", 3, ("OK", "OK", "OK", "OK")),
    ("0----", 3, ("OK", "OK", "OK", "OK")),
    ("-----", 3, ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    ("0XX-X", 3, ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("----X", 3, ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    ("0-X-X", 2, ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("00X0X", 2, ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("0-X--", 2, ("OK", "OK", "ALARM", "OK")),
    ("----0", 2, ("OK", "OK", "ALARM", "OK")),
    ("----X", 2, ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
]


@pytest.mark.parametrize("pattern,m,expected", ROWS, ids=[f"{p}-{m}of3" for p, m, _ in ROWS])
@pytest.mark.parametrize("start", ["OK", "ALARM"])
def test_user_guide_tables(cw, evaluator, uid, pattern, m, expected, start):
    metric = f"{uid}-errors"
    d = dims(uid)
    # Period 60, N = 3: evaluated at T0 + 300 s the range is the 5 complete minutes [0, 300).
    points = [(60 * i + 5, {"0": 0.0, "X": 1.0}[c]) for i, c in enumerate(pattern) if c != "-"]
    put(cw, metric, d, points)
    for mode in MODES:
        alarm(
            cw,
            f"{uid}-{mode}",
            metric,
            d,
            Period=60,
            EvaluationPeriods=3,
            DatapointsToAlarm=m,
            Threshold=0.5,
            TreatMissingData=mode,
        )
        cw.set_alarm_state(AlarmName=f"{uid}-{mode}", StateValue=start, StateReason="test start")
    evaluator.evaluate_once(now=T0_EPOCH + 300)
    for mode, want in zip(MODES, expected, strict=True):
        assert state(cw, f"{uid}-{mode}") == (start if want == "keep" else want), mode


def test_m_of_n_needs_m_breaching_datapoints(cw, evaluator, uid):
    metric, d = f"{uid}-lat", dims(uid)
    alarm(cw, f"{uid}-2of3", metric, d, EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=100.0)
    put(cw, metric, d, [(1, 50.0), (11, 500.0), (21, 50.0)])  # one breach among 3
    evaluator.evaluate_once(now=T0_EPOCH + 30)
    assert state(cw, f"{uid}-2of3") == "OK"
    put(cw, metric, d, [(31, 900.0)])  # now 2 of the last 3: [500, 50, 900]
    evaluator.evaluate_once(now=T0_EPOCH + 40)
    assert state(cw, f"{uid}-2of3") == "ALARM"
    reason = cw.describe_alarms(AlarmNames=[f"{uid}-2of3"])["MetricAlarms"][0]["StateReason"]
    assert reason.startswith(
        "Threshold Crossed: 2 out of the last 3 datapoints [900.0 (23/11/26 12:00:30), 500.0"
    )
    assert "(minimum 2 datapoints for OK -> ALARM transition)" in reason


def test_new_alarm_starts_insufficient_data_and_stays_without_data(cw, evaluator, uid):
    alarm(cw, f"{uid}-fresh", f"{uid}-nothing", dims(uid))
    described = cw.describe_alarms(AlarmNames=[f"{uid}-fresh"])["MetricAlarms"][0]
    assert described["StateValue"] == "INSUFFICIENT_DATA"
    assert described["StateReason"] == "Unchecked: Initial alarm creation"
    made = evaluator.evaluate_once(now=T0_EPOCH + 100)
    assert [t for t in made if t.alarm_name == f"{uid}-fresh"] == []
    assert state(cw, f"{uid}-fresh") == "INSUFFICIENT_DATA"


def test_updating_an_alarm_keeps_its_state(cw, evaluator, uid):
    metric, d = f"{uid}-e", dims(uid)
    alarm(cw, f"{uid}-a", metric, d)
    put(cw, metric, d, [(1, 1.0)])
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert state(cw, f"{uid}-a") == "ALARM"
    alarm(cw, f"{uid}-a", metric, d, Threshold=0.5)  # PutMetricAlarm on an existing alarm
    assert state(cw, f"{uid}-a") == "ALARM"
