"""The bridge's event shaping and target input, the template's pattern in moto's matcher, alert parsing."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import boto3
import pytest
from moto import mock_aws
from moto.events.models import EventPattern

from local.alerts import Alert
from local.bridge import (
    _MOTO_FIXED_EVENT_ID,
    EventBridgeDelivery,
    normalize_event,
    rate_seconds,
    target_input,
)

EVENT = {
    "version": "0",
    "id": _MOTO_FIXED_EVENT_ID,
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": 1795435200.25,
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::bucket"],
    "detail": {"bucket": {"name": "bucket"}, "object": {"key": "models/m/v1/model.tar.gz", "size": 3}},
    "ingestion-time": 1795435200.3,
}


def test_moto_events_get_a_unique_id_and_an_iso_time():
    first, second = normalize_event(EVENT), normalize_event(EVENT)
    assert first["id"] != second["id"]
    uuid.UUID(first["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["time"])
    assert first["time"] == "2026-11-23T12:00:00Z"
    assert "ingestion-time" not in first
    assert EVENT["id"] == _MOTO_FIXED_EVENT_ID  # the original is untouched
    aware = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert normalize_event(EVENT | {"time": aware})["time"] == "2026-11-23T12:00:00Z"
    kept = normalize_event(EVENT | {"id": "abc", "time": "2026-01-01T00:00:00Z"})
    assert (kept["id"], kept["time"]) == ("abc", "2026-01-01T00:00:00Z")


def test_target_input_follows_eventbridge():
    event = normalize_event(EVENT)
    assert json.loads(target_input({"Arn": "arn:aws:states:::x"}, event)) == event
    assert target_input({"Input": '{"fixed": true}'}, event) == '{"fixed": true}'
    assert json.loads(target_input({"InputPath": "$.detail.object"}, event)) == event["detail"]["object"]
    transformed = target_input(
        {"InputTransformer": {"InputPathsMap": {"key": "$.detail.object.key"}, "InputTemplate": '{"k": "<key>"}'}}, event
    )
    assert json.loads(transformed) == {"k": "models/m/v1/model.tar.gz"}
    with pytest.raises(ValueError, match="unsupported InputPath"):
        target_input({"InputPath": "detail"}, event)


@pytest.mark.parametrize(
    ("key", "matches"),
    [
        ("models/bank-marketing/v1/model.tar.gz", True),
        ("models/bank-marketing/v1/evaluation.json", False),
        ("models/bank-marketing/v1/deployment.json", False),
        ("data-capture/guardrail-endpoint/x/model.tar.gz", False),
        ("models/model.tar.gz", False),
    ],
)
def test_the_templates_pattern_in_motos_matcher(key, matches):
    """The rule pattern of template.yaml, as the bridge relies on moto's own matcher for it."""
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["bucket"]}, "object": {"key": [{"wildcard": "models/*/*/model.tar.gz"}]}},
    }
    event = EVENT | {"detail": {"bucket": {"name": "bucket"}, "object": {"key": key}}}
    assert EventPattern.load(json.dumps(pattern)).matches_event(event) is matches


def envelope(message: str, **attributes: str) -> dict:
    return {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Subject": "Guardrail: DEPLOYED bank-marketing v2",
        "Message": message,
        "Timestamp": "2026-11-23T12:00:00.000Z",
        "MessageAttributes": {k: {"Type": "String", "Value": v} for k, v in attributes.items()},
    }


def test_alert_from_a_json_body_with_attributes():
    alert = Alert.from_envelope(envelope('{"outcome": "DEPLOYED", "endpoint": "e", "model": "m", "auc": 0.8}',
                                         outcome="DEPLOYED", endpoint="guardrail-endpoint", model="bank-marketing"))
    assert (alert.outcome, alert.endpoint, alert.model) == ("DEPLOYED", "guardrail-endpoint", "bank-marketing")
    assert alert.payload == {"outcome": "DEPLOYED", "endpoint": "e", "model": "m", "auc": 0.8}
    assert alert.subject == "Guardrail: DEPLOYED bank-marketing v2"
    assert alert.attributes["outcome"] == "DEPLOYED"


def test_alert_from_text_with_an_embedded_payload_and_no_attributes():
    body = 'Rolled back: alarm {5xx} fired.\n\nPayload:\n{"outcome": "ROLLED_BACK", "endpoint": "e", "model": "m"}'
    alert = Alert.from_envelope(envelope(body))
    assert alert.payload == {"outcome": "ROLLED_BACK", "endpoint": "e", "model": "m"}
    assert (alert.outcome, alert.endpoint, alert.model) == ("ROLLED_BACK", "e", "m")


def test_alert_without_any_json():
    alert = Alert.from_envelope(envelope("plain text"))
    assert alert.payload is None and alert.outcome is None


def test_rate_expressions():
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(2 days)") == 172800
    assert rate_seconds("cron(0 3 * * ? *)") is None
    for bad in ("rate(1 minutes)", "rate(2 hour)", "rate(0 minutes)"):
        with pytest.raises(ValueError):
            rate_seconds(bad)


@pytest.fixture
def recording_delivery():
    """The bridge installed on in-process moto, delivering into a list instead of the services."""
    with mock_aws():
        delivery = EventBridgeDelivery({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, tick=3600)
        delivered: list[tuple[str, str, dict]] = []

        def record(rule_name, target, event):
            if target["Arn"].split(":")[2] not in ("states", "lambda"):
                return None
            delivered.append((rule_name, target["Arn"], event))
            return target["Arn"]

        delivery.deliver = record  # type: ignore[method-assign]
        delivery.install()
        try:
            yield delivery, delivered
        finally:
            delivery.uninstall()


FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:check-data"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:guardrail"


def test_a_schedule_rule_neither_swallows_nor_blocks_s3_events(recording_delivery):
    """Regression: a schedule-only rule (empty pattern) created first used to abort S3's delivery loop."""
    _delivery, delivered = recording_delivery
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(Name="data-check", ScheduleExpression="rate(1 hour)")
    events.put_targets(Rule="data-check", Targets=[{"Id": "f", "Arn": FUNCTION}])
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"],
               "detail": {"object": {"key": [{"wildcard": "models/*/*/model.tar.gz"}]}}}
    events.put_rule(Name="uploads", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="uploads", Targets=[{"Id": "sm", "Arn": MACHINE},
                                                {"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:nowhere"}])
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models-bucket")
    s3.put_bucket_notification_configuration(Bucket="models-bucket",
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.put_object(Bucket="models-bucket", Key="models/m/v1/evaluation.json", Body=b"{}")
    s3.put_object(Bucket="models-bucket", Key="models/m/v1/model.tar.gz", Body=b"x")
    assert [(rule, arn) for rule, arn, _ in delivered] == [("uploads", MACHINE)]
    assert delivered[0][2]["detail"]["object"]["key"] == "models/m/v1/model.tar.gz"


def test_rate_schedules_fire_once_per_period_to_their_targets(recording_delivery):
    delivery, delivered = recording_delivery
    events = boto3.client("events", region_name="us-east-1")
    arn = events.put_rule(Name="data-check", ScheduleExpression="rate(1 hour)")["RuleArn"]
    events.put_targets(Rule="data-check", Targets=[{"Id": "f", "Arn": FUNCTION, "Input": '{"window": 60}'}])
    events.put_rule(Name="nightly", ScheduleExpression="cron(0 3 * * ? *)")
    events.put_targets(Rule="nightly", Targets=[{"Id": "f", "Arn": FUNCTION}])
    events.put_rule(Name="off", ScheduleExpression="rate(1 minute)", State="DISABLED")
    events.put_targets(Rule="off", Targets=[{"Id": "f", "Arn": FUNCTION}])

    assert delivery.fire_due_schedules(1000.0) == []  # the first firing is one period after creation
    assert delivery.fire_due_schedules(4599.0) == []
    assert delivery.fire_due_schedules(4600.0) == ["data-check"]
    assert delivery.fire_due_schedules(4601.0) == []
    assert delivery.fire_due_schedules(8200.0) == ["data-check"]
    rule, target, event = delivered[0]
    assert (rule, target) == ("data-check", FUNCTION)
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [arn] and event["detail"] == {}
