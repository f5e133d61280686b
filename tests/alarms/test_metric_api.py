"""GetMetricStatistics, GetMetricData and ListMetrics as AWS computes them (local/alarms/metric_api.py),
through real boto3 clients against the moto server of conftest.py."""

from __future__ import annotations

import pytest
from alarms_support import T0, T0_EPOCH, alarm, at, dims, put, state
from botocore.exceptions import ClientError

from local.alarms.metrics import BackendMetricIndex

SKEWED = [1000.0] * 95 + [100_000.0] * 5  # p50 1000, p95 1000, p99 100000


def reversed_dims(endpoint: str, config: str | None = None) -> list[dict[str, str]]:
    return list(reversed(dims(endpoint, config)))


def stats(cw, metric, dimensions, start, end, period, **kw):
    out = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=metric,
        Dimensions=dimensions,
        StartTime=start,
        EndTime=end,
        Period=period,
        **kw,
    )
    return sorted(out["Datapoints"], key=lambda d: d["Timestamp"])


def data(cw, metric, dimensions, start, end, period, stat):
    query = {
        "Id": "m",
        "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dimensions},
            "Period": period,
            "Stat": stat,
        },
    }
    result = cw.get_metric_data(
        MetricDataQueries=[query], StartTime=start, EndTime=end, ScanBy="TimestampAscending"
    )["MetricDataResults"][0]
    return list(zip(result["Timestamps"], result["Values"], strict=True))


def publish_like_the_emulator(cw, metric, uid, n):
    """Each request goes to the {EndpointName, VariantName} and the {.., EndpointConfigName} series."""
    put(cw, metric, dims(uid), [(1 + i, 1.0) for i in range(n)])
    put(cw, metric, dims(uid, config="cfg-1"), [(1 + i, 1.0) for i in range(n)])


# ---- 1. exact, order-insensitive dimension match ----------------------------------------------


def test_get_metric_statistics_does_not_mix_dimension_sets(cw, uid):
    metric = f"{uid}-Invocations"
    publish_like_the_emulator(cw, metric, uid, 9)
    end = at(60)
    assert [d["Sum"] for d in stats(cw, metric, dims(uid), T0, end, 60, Statistics=["Sum"])] == [9.0]
    three = stats(cw, metric, reversed_dims(uid, "cfg-1"), T0, end, 60, Statistics=["Sum"])
    assert [d["Sum"] for d in three] == [9.0]  # order of the dimensions does not matter
    only_endpoint = [{"Name": "EndpointName", "Value": uid}]
    assert stats(cw, metric, only_endpoint, T0, end, 60, Statistics=["Sum"]) == []  # never published


def test_get_metric_data_is_exact_and_order_insensitive(cw, uid):
    metric = f"{uid}-Invocations"
    publish_like_the_emulator(cw, metric, uid, 9)
    assert [v for _, v in data(cw, metric, reversed_dims(uid), T0, at(60), 60, "Sum")] == [9.0]
    assert [v for _, v in data(cw, metric, dims(uid, "cfg-1"), T0, at(60), 60, "Sum")] == [9.0]
    assert data(cw, metric, [{"Name": "VariantName", "Value": "AllTraffic"}], T0, at(60), 60, "Sum") == []


def test_get_metric_data_checks_the_namespace(cw, uid):
    metric = f"{uid}-m"
    cw.put_metric_data(
        Namespace="Other",
        MetricData=[{"MetricName": metric, "Dimensions": dims(uid), "Timestamp": at(1), "Value": 5.0}],
    )
    assert data(cw, metric, dims(uid), T0, at(60), 60, "Sum") == []


def test_out_of_process_alarm_reader_matches_dimensions_in_any_order(cw, evaluator, uid, monkeypatch):
    monkeypatch.setattr(BackendMetricIndex, "backend_for", staticmethod(lambda alarm: None))
    metric = f"{uid}-Invocation5XXErrors"
    put(cw, metric, dims(uid), [(1, 1.0), (2, 1.0)])
    put(cw, metric, dims(uid, config="cfg-1"), [(1, 0.0)] * 10)
    alarm(cw, f"{uid}-a", metric, reversed_dims(uid), Threshold=0.5)
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert state(cw, f"{uid}-a") == "ALARM"  # Average 1.0 of its own series, not 2/12


# ---- 2. periods aligned as CloudWatch aligns them ---------------------------------------------


def test_datapoints_start_at_period_boundaries(cw, uid):
    metric, d = f"{uid}-m", dims(uid)
    put(cw, metric, d, [(55, 1.0), (65, 2.0), (125, 4.0)])
    # StartTime 12:00:30 is rounded down to 12:00:00; periods [12:00, 12:01), [12:01, 12:02), ...
    got = stats(cw, metric, d, at(30), at(180), 60, Statistics=["Sum"])
    assert [(p["Timestamp"], p["Sum"]) for p in got] == [(T0, 1.0), (at(60), 2.0), (at(120), 4.0)]
    assert data(cw, metric, d, at(30), at(180), 60, "Sum") == [(T0, 1.0), (at(60), 2.0), (at(120), 4.0)]


def test_high_resolution_periods_align_to_their_division_of_the_minute(cw, uid):
    metric, d = f"{uid}-m", dims(uid)
    put(cw, metric, d, [(19, 1.0), (21, 2.0), (25, 3.0)])
    got = stats(cw, metric, d, at(13), at(40), 10, Statistics=["Sum", "SampleCount"])  # 13 s -> 10 s
    assert [(p["Timestamp"], p["Sum"], p["SampleCount"]) for p in got] == [
        (at(10), 1.0, 1.0),
        (at(20), 5.0, 2.0),
    ]
    assert data(cw, metric, d, at(13), at(40), 10, "Maximum") == [(at(10), 1.0), (at(20), 3.0)]


# ---- 3. percentiles and other extended statistics ---------------------------------------------


def test_extended_statistics_in_get_metric_statistics(cw, uid):
    metric, d = f"{uid}-ModelLatency", dims(uid)
    put(cw, metric, d, [(1 + i * 0.05, v) for i, v in enumerate(SKEWED)])
    got = stats(
        cw, metric, d, T0, at(60), 60, ExtendedStatistics=["p99", "p50", "tm95", "PR(:1000)", "TC(1000:)"]
    )
    assert len(got) == 1 and got[0]["Timestamp"] == T0
    assert got[0]["ExtendedStatistics"] == {
        "p99": 100_000.0,
        "p50": 1000.0,
        "tm95": 1000.0,
        "PR(:1000)": 95.0,
        "TC(1000:)": 5.0,
    }
    with pytest.raises(ClientError, match="InvalidParameterCombination"):
        stats(cw, metric, d, T0, at(60), 60, Statistics=["Sum"], ExtendedStatistics=["p99"])
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        stats(cw, metric, d, T0, at(60), 60, ExtendedStatistics=["p101"])


def test_percentiles_in_get_metric_data(cw, uid):
    metric, d = f"{uid}-ModelLatency", dims(uid)
    put(cw, metric, d, [(1 + i * 0.05, v) for i, v in enumerate(SKEWED)])
    put(cw, metric, d, [(61, 7.0)])
    assert data(cw, metric, d, T0, at(120), 60, "p99") == [(T0, 100_000.0), (at(60), 7.0)]
    assert data(cw, metric, d, T0, at(60), 60, "p90") == [(T0, 1000.0)]
    assert data(cw, metric, d, T0, at(60), 60, "IQM") == [(T0, 1000.0)]
    with pytest.raises(ClientError, match="ValidationError"):
        data(cw, metric, d, T0, at(60), 60, "p99x")


def statistic_set(cw, metric, d, seconds, count, total, low, high):
    cw.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": d,
                "Timestamp": at(seconds),
                "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
            }
        ],
    )


def test_percentiles_need_raw_values(cw, uid):
    """A statistic set gives percentiles only when SampleCount is 1 or Min == Max; none with negatives."""
    metric, d = f"{uid}-m", dims(uid)
    statistic_set(cw, metric, d, 1, 20, 3, 0, 1)  # [0, 60): percentiles unavailable
    statistic_set(cw, metric, d, 61, 20, 40, 2, 2)  # [60, 120): twenty 2s
    put(cw, metric, d, [(121, -1.0), (122, 5.0)])  # [120, 180): a negative value
    assert [p["Timestamp"] for p in stats(cw, metric, d, T0, at(180), 60, ExtendedStatistics=["p99"])] == [
        at(60)
    ]
    assert data(cw, metric, d, T0, at(180), 60, "p99") == [(at(60), 2.0)]
    assert [v for _, v in data(cw, metric, d, T0, at(180), 60, "Average")] == [0.15, 2.0, 2.0]


def test_percentile_alarm_on_single_valued_statistic_sets(cw, evaluator, uid):
    """The alarm evaluator uses the same rule (one implementation)."""
    metric, d = f"{uid}-m", dims(uid)
    statistic_set(cw, metric, d, 1, 20, 2000, 100, 100)
    alarm(cw, f"{uid}-p99", metric, d, ExtendedStatistic="p99", Threshold=50.0)
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert state(cw, f"{uid}-p99") == "ALARM"


def test_out_of_process_alarm_reader_evaluates_percentiles(cw, evaluator, uid, monkeypatch):
    monkeypatch.setattr(BackendMetricIndex, "backend_for", staticmethod(lambda alarm: None))
    metric, d = f"{uid}-ModelLatency", dims(uid)
    put(cw, metric, d, [(1 + i * 0.05, v) for i, v in enumerate(SKEWED)])
    alarm(cw, f"{uid}-p99", metric, d, ExtendedStatistic="p99", Threshold=50_000.0)
    alarm(cw, f"{uid}-p50", metric, d, ExtendedStatistic="p50", Threshold=50_000.0)
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert (state(cw, f"{uid}-p99"), state(cw, f"{uid}-p50")) == ("ALARM", "OK")


# ---- 4. ListMetrics lists each metric once ------------------------------------------------------


def test_list_metrics_has_no_duplicates(cw, uid):
    metric = f"{uid}-Invocations"
    publish_like_the_emulator(cw, metric, uid, 5)
    put(cw, metric, reversed_dims(uid), [(30, 1.0)])  # same metric, dimensions in another order
    listed = cw.list_metrics(Namespace="AWS/SageMaker", MetricName=metric)["Metrics"]
    sets = sorted(sorted((x["Name"], x["Value"]) for x in m["Dimensions"]) for m in listed)
    assert sets == sorted(
        [
            sorted((x["Name"], x["Value"]) for x in dims(uid)),
            sorted((x["Name"], x["Value"]) for x in dims(uid, "cfg-1")),
        ]
    )
    only_config = cw.list_metrics(
        Namespace="AWS/SageMaker",
        MetricName=metric,
        Dimensions=[{"Name": "EndpointConfigName", "Value": "cfg-1"}],
    )["Metrics"]
    assert len(only_config) == 1


def test_basic_statistics_in_one_aligned_datapoint(cw, uid):
    """All five statistics and the Unit, stamped with the period's start."""
    metric, d = f"{uid}-m", dims(uid)
    put(cw, metric, d, [(1, 1.0), (2, 3.0)])
    got = stats(
        cw,
        metric,
        d,
        T0,
        at(60),
        60,
        Statistics=list(("SampleCount", "Average", "Sum", "Minimum", "Maximum")),
    )
    assert [
        (p["SampleCount"], p["Average"], p["Sum"], p["Minimum"], p["Maximum"], p["Unit"]) for p in got
    ] == [(2.0, 2.0, 4.0, 1.0, 3.0, "None")]
    assert got[0]["Timestamp"] == T0


def test_alarms_on_trimmed_means_and_percentile_ranks(cw, evaluator, uid):
    """PutMetricAlarm accepts tm90, TM(X%:X%), PR(n:m) ...; the evaluator computes them like GetMetricData."""
    metric, d = f"{uid}-ModelLatency", dims(uid)
    put(cw, metric, d, [(1 + i * 0.05, v) for i, v in enumerate(SKEWED)])
    alarm(cw, f"{uid}-tm99", metric, d, ExtendedStatistic="tm99", Threshold=4000.0)  # (95*1e3 + 4*1e5) / 99
    alarm(cw, f"{uid}-tm95", metric, d, ExtendedStatistic="tm95", Threshold=4000.0)  # 1000
    alarm(
        cw,
        f"{uid}-pr",
        metric,
        d,
        ExtendedStatistic="PR(:1000)",
        Threshold=96.0,
        ComparisonOperator="LessThanThreshold",
    )  # 95 % of requests within 1 ms
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert [state(cw, f"{uid}-{n}") for n in ("tm99", "tm95", "pr")] == ["ALARM", "OK", "ALARM"]
    assert data(cw, metric, d, T0, at(10), 10, "tm99") == [(T0, (95 * 1000.0 + 4 * 100_000.0) / 99)]
