"""Read Guardrail's SNS notifications locally: an SQS queue subscribed to the topic.

Raw message delivery stays off, so each message is SNS's envelope (Subject, Message,
MessageAttributes), exactly what an e-mail/HTTP subscriber would get.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from local.env import client

ALERT_QUEUE_NAME = "guardrail-local-alerts"


class Alert(BaseModel):
    """One Guardrail notification, parsed from the SNS envelope."""

    message_id: str
    topic_arn: str
    subject: str | None
    message: str  # the body as published
    attributes: dict[str, str]
    outcome: str | None
    endpoint: str | None
    model: str | None
    payload: dict[str, Any] | None  # the body when it is JSON, or its embedded JSON payload
    timestamp: str | None

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> Alert:
        attributes = {k: str(v.get("Value")) for k, v in (envelope.get("MessageAttributes") or {}).items()}
        message = envelope.get("Message", "")
        payload = _json_payload(message)
        return cls(
            message_id=envelope.get("MessageId", ""),
            topic_arn=envelope.get("TopicArn", ""),
            subject=envelope.get("Subject"),
            message=message,
            attributes=attributes,
            outcome=attributes.get("outcome") or (payload or {}).get("outcome"),
            endpoint=attributes.get("endpoint") or (payload or {}).get("endpoint"),
            model=attributes.get("model") or (payload or {}).get("model"),
            payload=payload,
            timestamp=envelope.get("Timestamp"),
        )


def _json_payload(message: str) -> dict[str, Any] | None:
    """The JSON in a message: the whole body, or (text body + JSON) its last `{...}` block."""
    try:
        parsed = json.loads(message)
        return parsed if isinstance(parsed, dict) else None
    except ValueError:
        pass
    start = message.find("{")
    while start != -1:
        try:
            parsed, _ = json.JSONDecoder().raw_decode(message[start:])
            if isinstance(parsed, dict):
                return parsed
        except ValueError:
            pass
        start = message.find("{", start + 1)
    return None


def ensure_alert_queue(env: dict[str, str], topic_arns: list[str], queue_name: str = ALERT_QUEUE_NAME) -> str:
    """Create the queue, let SNS write to it, subscribe it to each topic; returns the queue URL."""
    sqs, sns = client("sqs", env), client("sns", env)
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    for topic_arn in topic_arns:
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "false"},
            ReturnSubscriptionArn=True,
        )
    return queue_url


class AlertStream:
    """Alerts as they arrive. `AlertStream(env).poll(timeout=30)` yields each, deleting it from the queue."""

    def __init__(self, env: dict[str, str], queue_url: str | None = None) -> None:
        self._sqs = client("sqs", env)
        self.queue_url = queue_url or self._sqs.get_queue_url(QueueName=ALERT_QUEUE_NAME)["QueueUrl"]

    def poll(self, timeout: float = 0.0, wait: float = 1.0) -> Iterator[Alert]:
        """Yield alerts until `timeout` seconds pass with none left (0: drain what is there now)."""
        deadline = time.monotonic() + timeout
        while True:
            wait_seconds = int(max(0, min(wait, deadline - time.monotonic())))
            messages = self._sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
            for message in messages:
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                yield Alert.from_envelope(json.loads(message["Body"]))
            if not messages:
                if time.monotonic() >= deadline:
                    return
                if wait_seconds == 0:
                    time.sleep(0.1)

    def wait_for(self, predicate: Any = None, timeout: float = 60.0) -> Alert:
        """The first alert that satisfies `predicate` (any alert if None); TimeoutError otherwise.
        Alerts read before it are consumed."""
        for alert in self.poll(timeout=timeout):
            if predicate is None or predicate(alert):
                return alert
        raise TimeoutError(f"no matching alert within {timeout:.0f} s")
