"""Make in-process moto's CloudWatch behave like AWS where the evaluator depends on it.

moto 5.2.5 (checked in `moto/cloudwatch/`): a new alarm starts `OK` (AWS: `INSUFFICIENT_DATA`,
reason "Unchecked: Initial alarm creation"); PutMetricAlarm on an existing alarm replaces it and
resets its state (AWS keeps the state and only overwrites the configuration); DescribeAlarmHistory
is not implemented, PutMetricAlarm rejects extended statistics other than pNN, and SetAlarmState
publishes nothing to the alarm's SNS actions (the evaluator publishes, see `notify.py`). `patch_moto()`
fixes the first four, idempotently, for the moto running in this process (the local cloud's
ThreadedMotoServer), and makes GetMetricStatistics, GetMetricData and ListMetrics compute as AWS does
(`metric_api.py`: exact dimension sets, aligned periods, extended statistics). Alarm history is kept in AWS's
format: StateUpdate items with HistoryData {version, oldState, newState}, ConfigurationUpdate on
create/update, Action items recorded by the evaluator.
"""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime
from typing import Any

from local.alarms.semantics import parse_extended_statistic

_lock = threading.Lock()
_patched = False
HISTORY_ATTR = "guardrail_history"
MAX_HISTORY = 1000


def _now() -> datetime:
    return datetime.now(UTC)


def history_of(alarm: Any) -> list[dict[str, Any]]:
    items = getattr(alarm, HISTORY_ATTR, None)
    if items is None:
        items = []
        setattr(alarm, HISTORY_ATTR, items)
    return items


def record(alarm: Any, item_type: str, summary: str, data: dict[str, Any]) -> None:
    items = history_of(alarm)
    items.append(
        {
            "AlarmName": alarm.name,
            "AlarmType": "MetricAlarm" if getattr(alarm, "rule", None) is None else "CompositeAlarm",
            "Timestamp": _now(),
            "HistoryItemType": item_type,
            "HistorySummary": summary,
            "HistoryData": json.dumps(data),
        }
    )
    del items[:-MAX_HISTORY]


def _state_json(value: str, reason: str, reason_data: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {"stateValue": value, "stateReason": reason}
    if reason_data:
        with contextlib.suppress(ValueError):
            state["stateReasonData"] = json.loads(reason_data)
    return state


def patch_moto() -> None:
    """Install the patches (safe to call many times)."""
    global _patched
    with _lock:
        if _patched:
            return
        from moto.cloudwatch.models import Alarm, CloudWatchBackend
        from moto.cloudwatch.responses import CloudWatchResponse
        from moto.core.responses import ActionResult

        original_put = CloudWatchBackend.put_metric_alarm
        original_update = Alarm.update_state

        def put_metric_alarm(self: Any, *args: Any, **kwargs: Any) -> Any:
            name = kwargs.get("name", args[0] if args else None)
            previous = self.alarms.get(name)
            # moto accepts only pNN; PutMetricAlarm also takes tm90, tc90, ts90, wm90, IQM, PR(n:m),
            # TC/TM/TS/WM(X%:X%) (API reference, ExtendedStatistic)
            extended = kwargs.get("extended_statistic")
            other = bool(extended) and not extended.startswith("p") and parse_extended_statistic(extended)
            if other:
                kwargs["extended_statistic"] = "p50"  # passes moto's check; replaced below
            alarm = original_put(self, *args, **kwargs)
            if other:
                alarm.extended_statistic = extended
            if previous is None:
                alarm.state_value = "INSUFFICIENT_DATA"
                alarm.state_reason = "Unchecked: Initial alarm creation"
                record(
                    alarm,
                    "ConfigurationUpdate",
                    f'Alarm "{name}" created',
                    {"type": "Create", "version": "1.0"},
                )
            else:
                for attr in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp"):
                    setattr(alarm, attr, getattr(previous, attr))
                setattr(alarm, HISTORY_ATTR, history_of(previous))
                record(
                    alarm,
                    "ConfigurationUpdate",
                    f'Alarm "{name}" updated',
                    {"type": "Update", "version": "1.0"},
                )
            return alarm

        def update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
            old = _state_json(self.state_value, self.state_reason, self.state_reason_data)
            original_update(self, reason, reason_data, state_value)
            record(
                self,
                "StateUpdate",
                f"Alarm updated from {old['stateValue']} to {state_value}",
                {
                    "version": "1.0",
                    "oldState": old,
                    "newState": _state_json(state_value, reason, reason_data),
                },
            )

        def describe_alarm_history(self: Any) -> Any:
            name = self._get_param("AlarmName")
            item_type = self._get_param("HistoryItemType")
            start, end = self._get_param("StartDate"), self._get_param("EndDate")
            newest_first = (self._get_param("ScanBy") or "TimestampDescending") == "TimestampDescending"
            max_records = int(self._get_param("MaxRecords") or 100)
            offset = int(self._get_param("NextToken") or 0)
            items = [
                item
                for alarm in self.cloudwatch_backend.alarms.values()
                if name is None or alarm.name == name
                for item in history_of(alarm)
                if (item_type is None or item["HistoryItemType"] == item_type)
                and (start is None or item["Timestamp"] >= _aware(start))
                and (end is None or item["Timestamp"] <= _aware(end))
            ]
            items.sort(key=lambda i: i["Timestamp"], reverse=newest_first)
            page = items[offset : offset + max_records]
            result: dict[str, Any] = {"AlarmHistoryItems": page}
            if offset + max_records < len(items):
                result["NextToken"] = str(offset + max_records)
            return ActionResult(result)

        CloudWatchBackend.put_metric_alarm = put_metric_alarm
        Alarm.update_state = update_state
        CloudWatchResponse.describe_alarm_history = describe_alarm_history
        _patch_metric_reads(CloudWatchBackend, CloudWatchResponse, ActionResult)
        _patched = True


def _patch_metric_reads(backend_cls: Any, response_cls: Any, action_result: Any) -> None:
    """GetMetricStatistics, GetMetricData (MetricStat) and ListMetrics as AWS computes them (`metric_api`)."""
    from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue, ValidationError
    from moto.cloudwatch.metric_data_expression_parser import parse_expression

    from local.alarms import metric_api

    original_get_metric_data = backend_cls.get_metric_data

    def get_metric_statistics(self: Any) -> Any:
        statistics = self._get_param("Statistics", []) or []
        extended = self._get_param("ExtendedStatistics", []) or []
        if not statistics and not extended:
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics")
        if statistics and extended:  # API reference: "either Statistics or ExtendedStatistics, but not both"
            raise InvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics, but not both"
            )
        for name in extended:
            if metric_api.parse_extended_statistic(name) is None:
                raise InvalidParameterValue(
                    f"The value {name} for parameter ExtendedStatistics is not supported."
                )
        for name in statistics:
            if name not in metric_api.BASIC:
                raise InvalidParameterValue(f"The value {name} for parameter Statistics is not supported.")
        start, end = self._get_param("StartTime"), self._get_param("EndTime")
        if start >= end:
            raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
        metric_name = self._get_param("MetricName")
        datapoints = metric_api.get_metric_statistics(
            self.cloudwatch_backend,
            self._get_param("Namespace"),
            metric_name,
            self._get_param("Dimensions", []) or [],
            start,
            end,
            self._get_int_param("Period"),
            statistics,
            extended,
            self._get_param("Unit"),
        )
        return action_result({"Label": metric_name, "Datapoints": datapoints})

    def get_metric_data(
        self: Any,
        queries: list[dict[str, Any]],
        start_time: Any,
        end_time: Any,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        if start_time >= end_time:
            raise ValidationError("The parameter StartTime must be less than the parameter EndTime.")
        results: dict[str, dict[str, Any]] = {}
        for query in queries:
            if "MetricStat" in query:
                stat = query["MetricStat"]["Stat"]
                if not metric_api.valid_stat(stat):
                    raise ValidationError(
                        f"The value {stat} for parameter MetricDataQueries.Stat is not supported."
                    )
                results[query["Id"]] = metric_api.metric_stat_result(
                    self, query, start_time, end_time, scan_by
                )
        computed = list(results.values())
        insights = [q for q in queries if q.get("Expression", "").startswith("SELECT")]
        if insights:  # moto's own (it sums everything); kept as it was
            for result in original_get_metric_data(self, insights, start_time, end_time, scan_by):
                results[result["id"]] = result
        for query in queries:
            expression = query.get("Expression")
            if expression and not expression.startswith("SELECT"):
                values, timestamps = parse_expression(expression, computed)
                results[query["Id"]] = {
                    "id": query["Id"],
                    "label": query.get("Label") or query["Id"],
                    "values": values,
                    "timestamps": timestamps,
                    "status_code": "Complete",
                }
        return [results[q["Id"]] for q in queries if q.get("ReturnData", True) and q["Id"] in results]

    def get_filtered_metrics(
        self: Any, metric_name: str, namespace: str, dimensions: list[dict[str, str]]
    ) -> list[Any]:
        seen: set[metric_api.SeriesKey] = set()
        unique = []
        for datum in self.get_all_metrics():
            if not datum.filter(namespace=namespace, name=metric_name, dimensions=dimensions):
                continue
            key = metric_api.series_key(datum.namespace, datum.name, datum.dimensions)
            if key not in seen:
                seen.add(key)
                unique.append(datum)
        return unique

    response_cls.get_metric_statistics = get_metric_statistics
    backend_cls.get_metric_data = get_metric_data
    backend_cls.get_filtered_metrics = get_filtered_metrics


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
