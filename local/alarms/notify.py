"""Alarm actions: CloudWatch's SNS notification for a state change (the JSON AWS publishes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from local.alarms.definition import AlarmDefinition

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
}


def _iso(ts: datetime) -> str:
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def actions_for(alarm: AlarmDefinition, state: str) -> list[str]:
    if not alarm.actions_enabled:
        return []
    return {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions}.get(state, alarm.insufficient_data_actions)


def alarm_message(
    alarm: AlarmDefinition, old_state: str, new_state: str, reason: str, changed_at: datetime
) -> tuple[str, dict[str, Any]]:
    """(Subject, Message) as CloudWatch sends them to an SNS topic."""
    region_name = REGION_NAMES.get(alarm.region, alarm.region)
    trigger: dict[str, Any] = {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.m,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.missing_treatment,
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    }
    if alarm.extended_statistic:
        trigger["ExtendedStatistic"] = alarm.extended_statistic
    else:
        trigger["Statistic"] = (alarm.statistic or "").upper()
    message = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": alarm.account_id,
        "AlarmConfigurationUpdatedTimestamp": _iso(alarm.configuration_updated or changed_at),
        "NewStateValue": new_state,
        "NewStateReason": reason,
        "StateChangeTime": _iso(changed_at),
        "Region": region_name,
        "AlarmArn": alarm.arn,
        "OldStateValue": old_state,
        "OKActions": alarm.ok_actions,
        "AlarmActions": alarm.alarm_actions,
        "InsufficientDataActions": alarm.insufficient_data_actions,
        "Trigger": trigger,
    }
    subject = f'{new_state}: "{alarm.name}" in {region_name}'
    return subject[:100], message


def publish(sns: Any, topic_arn: str, subject: str, message: dict[str, Any]) -> str:
    return sns.publish(TopicArn=topic_arn, Subject=subject, Message=json.dumps(message))["MessageId"]
