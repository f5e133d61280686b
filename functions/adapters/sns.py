"""SNS: outcome notifications."""

from __future__ import annotations

from typing import Any

from functions.adapters._client import client as _client
from functions.errors import aws_errors


def client() -> Any:
    return _client("sns")


def publish(topic_arn: str, subject: str, message: str, attributes: dict[str, str]) -> str:
    """Publish one message with string MessageAttributes; return its MessageId."""
    with aws_errors("publish"):
        return client().publish(
            TopicArn=topic_arn,
            Subject=subject,
            Message=message,
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
            },
        )["MessageId"]
