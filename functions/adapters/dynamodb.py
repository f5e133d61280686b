"""DynamoDB: the per-endpoint lock and the per-upload idempotency records.

Table: partition key `pk` (String); TTL attribute `expires_at` (epoch seconds). Items are plain strings and
numbers, written with the low-level client (no boto3 resource layer).
"""

from __future__ import annotations

from typing import Any

from functions.adapters._client import client as _client
from functions.errors import ConditionFailed, aws_errors


def client() -> Any:
    return _client("dynamodb")


def _attr(value: str | int | float) -> dict[str, str]:
    return {"N": str(value)} if isinstance(value, int | float) else {"S": str(value)}


def _plain(item: dict[str, dict[str, str]]) -> dict[str, str | float]:
    return {k: (float(v["N"]) if "N" in v else v.get("S", "")) for k, v in item.items()}


def put_if(
    table: str, item: dict[str, str | int | float], condition: str, values: dict[str, str | int | float]
) -> bool:
    """Conditional put; False when the condition was false (the item stays as it was)."""
    try:
        with aws_errors("put_item"):
            client().put_item(
                TableName=table,
                Item={k: _attr(v) for k, v in item.items()},
                ConditionExpression=condition,
                ExpressionAttributeValues={k: _attr(v) for k, v in values.items()},
            )
        return True
    except ConditionFailed:
        return False


def delete_if(table: str, pk: str, condition: str, values: dict[str, str | int | float]) -> bool:
    """Conditional delete; False when the condition was false or the item is gone."""
    try:
        with aws_errors("delete_item"):
            client().delete_item(
                TableName=table,
                Key={"pk": {"S": pk}},
                ConditionExpression=condition,
                ExpressionAttributeValues={k: _attr(v) for k, v in values.items()},
            )
        return True
    except ConditionFailed:
        return False


def get(table: str, pk: str) -> dict[str, Any] | None:
    with aws_errors("get_item"):
        item = client().get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    return _plain(item) if item else None
