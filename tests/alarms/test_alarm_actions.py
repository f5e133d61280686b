"""Transitions: alarm history with CloudWatch's reasons, SNS actions delivered to SQS, the loop."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from alarms_support import REGION, T0_EPOCH, alarm, dims, put, state

from local.alarms import AlarmEvaluator


@pytest.fixture
def topic_queue(moto_url, uid):
    sns = boto3.client("sns", endpoint_url=moto_url, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION)
    topic = sns.create_topic(Name=f"{uid}-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{uid}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict]:
        out = []
        while msgs := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        return out

    return topic, received


def test_transitions_are_recorded_in_alarm_history_with_reasons(cw, evaluator, uid):
    metric, d, name = f"{uid}-5xx", dims(uid, "cfg-2"), f"{uid}-5xx-rate"
    alarm(cw, name, metric, d, TreatMissingData="notBreaching")
    put(cw, metric, d, [(11, 1.0), (12, 0.0)])  # 50 % errors in [10, 20)
    evaluator.evaluate_once(now=T0_EPOCH + 5)  # no data yet, notBreaching: INSUFFICIENT_DATA -> OK
    evaluator.evaluate_once(now=T0_EPOCH + 20)  # [10, 20): 0.5 -> ALARM
    evaluator.evaluate_once(now=T0_EPOCH + 20.5)  # same datapoint: no new transition
    put(cw, metric, d, [(21, 0.0), (22, 0.0)])
    evaluator.evaluate_once(now=T0_EPOCH + 30)  # [20, 30): 0.0 -> OK

    items = cw.describe_alarm_history(
        AlarmName=name, HistoryItemType="StateUpdate", ScanBy="TimestampAscending"
    )
    updates = items["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in updates] == [
        "Alarm updated from INSUFFICIENT_DATA to OK",
        "Alarm updated from OK to ALARM",
        "Alarm updated from ALARM to OK",
    ]
    to_alarm = json.loads(updates[1]["HistoryData"])
    assert to_alarm["oldState"]["stateValue"] == "OK"
    assert to_alarm["newState"]["stateReason"] == (
        "Threshold Crossed: 1 out of the last 1 datapoints [0.5 (23/11/26 12:00:10)] was greater than or "
        "equal to the threshold (0.05) (minimum 1 datapoint for OK -> ALARM transition)."
    )
    evaluated = to_alarm["newState"]["stateReasonData"]["evaluatedDatapoints"]
    assert evaluated == [{"timestamp": "2026-11-23T12:00:10.000+0000", "sampleCount": 2.0, "value": 0.5}]
    first = json.loads(updates[0]["HistoryData"])["newState"]["stateReason"]
    assert first == (
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as "
        "[NonBreaching]."
    )
    later = datetime.now(UTC) + timedelta(hours=1)
    assert cw.describe_alarm_history(AlarmName=name, StartDate=later)["AlarmHistoryItems"] == []
    first_page = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate", MaxRecords=2)
    assert len(first_page["AlarmHistoryItems"]) == 2 and first_page["NextToken"]
    rest = cw.describe_alarm_history(
        AlarmName=name, HistoryItemType="StateUpdate", NextToken=first_page["NextToken"]
    )
    assert [i["HistorySummary"] for i in rest["AlarmHistoryItems"]] == [
        "Alarm updated from INSUFFICIENT_DATA to OK"
    ]
    created = cw.describe_alarm_history(AlarmName=name, HistoryItemType="ConfigurationUpdate")
    assert created["AlarmHistoryItems"][0]["HistorySummary"] == f'Alarm "{name}" created'


def test_sns_actions_reach_a_subscribed_queue(cw, evaluator, uid, topic_queue):
    topic, received = topic_queue
    metric, d, name = f"{uid}-lat", dims(uid, "cfg-2"), f"{uid}-latency"
    alarm(
        cw,
        name,
        metric,
        d,
        Threshold=10_000.0,
        AlarmDescription="new fleet latency",
        AlarmActions=[topic],
        OKActions=[topic],
        InsufficientDataActions=[topic],
    )
    put(cw, metric, d, [(1, 50_000.0), (2, 70_000.0)])
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    evaluator.evaluate_once(now=T0_EPOCH + 10.5)  # no transition, no second message
    messages = received()
    assert len(messages) == 1
    assert messages[0]["Subject"] == f'ALARM: "{name}" in US East (N. Virginia)'
    body = json.loads(messages[0]["Message"])
    assert body["AlarmName"] == name and body["AlarmDescription"] == "new fleet latency"
    assert (body["OldStateValue"], body["NewStateValue"]) == ("INSUFFICIENT_DATA", "ALARM")
    assert body["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [60000.0 ")
    assert body["AWSAccountId"] == "123456789012" and body["Region"] == "US East (N. Virginia)"
    assert body["Trigger"]["MetricName"] == metric and body["Trigger"]["Statistic"] == "AVERAGE"
    assert {"name": "EndpointConfigName", "value": "cfg-2"} in body["Trigger"]["Dimensions"]
    datetime.strptime(body["StateChangeTime"], "%Y-%m-%dT%H:%M:%S.%f%z")

    put(cw, metric, d, [(11, 1000.0)])
    evaluator.evaluate_once(now=T0_EPOCH + 20)
    back = received()
    assert [json.loads(m["Message"])["NewStateValue"] for m in back] == ["OK"]
    actions = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]
    assert len(actions) == 2 and all(
        a["HistorySummary"] == f"Successfully executed action {topic}" for a in actions
    )


def test_disabled_actions_publish_nothing(cw, evaluator, uid, topic_queue):
    topic, received = topic_queue
    metric, d, name = f"{uid}-m", dims(uid), f"{uid}-quiet"
    alarm(cw, name, metric, d, AlarmActions=[topic], ActionsEnabled=False)
    put(cw, metric, d, [(1, 1.0)])
    evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert state(cw, name) == "ALARM"
    assert received() == []


def test_background_loop_trips_on_live_metrics(cw, moto_url, uid):
    """The running evaluator (interval 0.2 s) sees errors published now, in the open 10-s period."""
    metric, d, name = f"{uid}-live", dims(uid, "green"), f"{uid}-live-5xx"
    alarm(cw, name, metric, d, TreatMissingData="notBreaching")
    with AlarmEvaluator(aws_endpoint_url=moto_url, interval=0.2) as ev:
        deadline = time.monotonic() + 5
        while state(cw, name) != "OK" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state(cw, name) == "OK"
        now = datetime.now(UTC)
        cw.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": d,
                    "Timestamp": now,
                    "Value": 1.0,
                    "StorageResolution": 1,
                }
            ],
        )
        started = time.monotonic()
        while state(cw, name) != "ALARM" and time.monotonic() - started < 5:
            time.sleep(0.05)
        assert state(cw, name) == "ALARM"
        assert time.monotonic() - started < 2.0
    assert any(t.alarm_name == name and t.new_state == "ALARM" for t in ev.transitions)


def test_interval_must_be_positive(moto_url):
    with pytest.raises(ValueError, match="interval"):
        AlarmEvaluator(aws_endpoint_url=moto_url, interval=0)


def test_an_alarm_deleted_mid_tick_does_not_stop_the_others(cw, evaluator, uid, monkeypatch):
    metric, d = f"{uid}-m", dims(uid)
    put(cw, metric, d, [(1, 1.0)])
    alarm(cw, f"{uid}-gone", metric, d)
    alarm(cw, f"{uid}-kept", metric, d)
    stale = evaluator._alarms()  # what DescribeAlarms said just before the delete
    cw.delete_alarms(AlarmNames=[f"{uid}-gone"])
    monkeypatch.setattr(evaluator, "_alarms", lambda: stale)
    made = evaluator.evaluate_once(now=T0_EPOCH + 10)
    assert [t.alarm_name for t in made if t.alarm_name.startswith(uid)] == [f"{uid}-kept"]
    assert state(cw, f"{uid}-kept") == "ALARM"
