"""The alarm as DescribeAlarms returns it, validated into the fields the evaluator uses."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

BASIC_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
THRESHOLD_OPERATORS = (
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


def parse_extended_statistic_safe(name: str | None) -> object | None:
    from local.alarms.semantics import parse_extended_statistic

    return parse_extended_statistic(name) if name else None


class Dimension(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(alias="Name")
    value: str = Field(alias="Value")


class AlarmDefinition(BaseModel):
    """One MetricAlarm from DescribeAlarms (boto3 shape, PascalCase keys)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    name: str = Field(alias="AlarmName")
    arn: str = Field(alias="AlarmArn")
    description: str | None = Field(default=None, alias="AlarmDescription")
    actions_enabled: bool = Field(default=True, alias="ActionsEnabled")
    ok_actions: list[str] = Field(default_factory=list, alias="OKActions")
    alarm_actions: list[str] = Field(default_factory=list, alias="AlarmActions")
    insufficient_data_actions: list[str] = Field(default_factory=list, alias="InsufficientDataActions")
    state: State = Field(alias="StateValue")
    state_reason: str | None = Field(default=None, alias="StateReason")
    configuration_updated: datetime | None = Field(default=None, alias="AlarmConfigurationUpdatedTimestamp")
    namespace: str | None = Field(default=None, alias="Namespace")
    metric_name: str | None = Field(default=None, alias="MetricName")
    statistic: str | None = Field(default=None, alias="Statistic")
    extended_statistic: str | None = Field(default=None, alias="ExtendedStatistic")
    dimensions: list[Dimension] = Field(default_factory=list, alias="Dimensions")
    period: int | None = Field(default=None, alias="Period")
    unit: str | None = Field(default=None, alias="Unit")
    evaluation_periods: int = Field(alias="EvaluationPeriods")
    datapoints_to_alarm: int | None = Field(default=None, alias="DatapointsToAlarm")
    threshold: float | None = Field(default=None, alias="Threshold")
    comparison_operator: str = Field(alias="ComparisonOperator")
    treat_missing_data: str | None = Field(default=None, alias="TreatMissingData")
    evaluate_low_sample_count_percentile: str | None = Field(
        default=None, alias="EvaluateLowSampleCountPercentile"
    )
    metrics: list[dict[str, Any]] = Field(default_factory=list, alias="Metrics")

    @property
    def account_id(self) -> str:
        return self.arn.split(":")[4]

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def m(self) -> int:
        """DatapointsToAlarm, defaulting to EvaluationPeriods (N of N)."""
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def missing_treatment(self) -> str:
        return self.treat_missing_data or "missing"

    @property
    def stat_name(self) -> str:
        return self.extended_statistic or self.statistic or ""

    @property
    def percentile(self) -> float | None:
        if self.extended_statistic and (match := _PERCENTILE.match(self.extended_statistic)):
            return float(match.group(1))
        return None

    @property
    def extended(self) -> Any:
        """The parsed ExtendedStatistic (`local.alarms.semantics.ExtendedStatistic`), or None."""
        from local.alarms.semantics import parse_extended_statistic

        return parse_extended_statistic(self.extended_statistic) if self.extended_statistic else None

    @property
    def effective_period(self) -> int:
        """Period, or for a metric-math alarm the period of its metrics."""
        if self.metrics:
            from local.alarms.math import alarm_period, parse_queries

            return alarm_period(parse_queries(self.metrics))
        return int(self.period or 60)

    def metric_definitions(self) -> dict[str, AlarmDefinition]:
        """A metric-math alarm's MetricStat queries, each as a single-metric definition a reader can fetch."""
        from local.alarms.math import parse_queries

        out: dict[str, AlarmDefinition] = {}
        for q in parse_queries(self.metrics):
            if q.expression is not None:
                continue
            extended = q.stat if q.stat not in BASIC_STATISTICS else None
            out[q.id] = self.model_copy(
                update={
                    "metrics": [],
                    "namespace": q.namespace,
                    "metric_name": q.metric_name,
                    "dimensions": [Dimension(Name=n, Value=v) for n, v in q.dimensions],
                    "period": q.period,
                    "unit": q.unit,
                    "statistic": None if extended else q.stat,
                    "extended_statistic": extended,
                }
            )
        return out

    @property
    def dimension_key(self) -> frozenset[tuple[str, str]]:
        return frozenset((d.name, d.value) for d in self.dimensions)

    def unsupported_reason(self) -> str | None:
        """Why this evaluator cannot evaluate the alarm, or None when it can."""
        if self.comparison_operator not in THRESHOLD_OPERATORS:
            return f"comparison operator {self.comparison_operator} (anomaly detection) is not supported"
        if self.metrics:  # metric math (local/alarms/math.py)
            from local.alarms.math import MathError, parse_queries

            try:
                queries = parse_queries(self.metrics)
            except (MathError, KeyError, TypeError, ValueError) as exc:
                return f"metric math: {exc}"
            for q in queries:
                if q.expression is None and not q.stat:
                    return f"metric math: query {q.id} has no Stat"
                if (
                    q.expression is None
                    and q.stat not in BASIC_STATISTICS
                    and parse_extended_statistic_safe(q.stat) is None
                ):
                    return f"metric math: statistic {q.stat!r} of {q.id} is not supported"
            if self.threshold is None:
                return "alarm has no Threshold"
            period = self.effective_period
            if period not in (10, 20, 30) and period % 60:
                return f"period {period} is not 10, 20, 30 or a multiple of 60"
            if self.m > self.evaluation_periods:
                return "DatapointsToAlarm is greater than EvaluationPeriods"
            return None
        if not (self.namespace and self.metric_name and self.period):
            return "alarm has no Namespace/MetricName/Period"
        if self.threshold is None:
            return "alarm has no Threshold"
        if self.extended_statistic and self.extended is None:
            return f"extended statistic {self.extended_statistic} is not supported"
        if not self.extended_statistic and self.statistic not in BASIC_STATISTICS:
            return f"statistic {self.statistic!r} is not supported"
        if self.period not in (10, 20, 30) and self.period % 60:
            return f"period {self.period} is not 10, 20, 30 or a multiple of 60"
        if self.m > self.evaluation_periods:
            return "DatapointsToAlarm is greater than EvaluationPeriods"
        if self.missing_treatment not in ("missing", "ignore", "breaching", "notBreaching"):
            return f"TreatMissingData {self.missing_treatment!r} is not supported"
        return None
