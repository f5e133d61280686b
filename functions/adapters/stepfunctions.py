"""Step Functions: whether an execution still runs (a lock whose holder has ended is taken over at once)."""

from __future__ import annotations

from typing import Any

from functions.adapters._client import client as _client
from functions.errors import translate


def client() -> Any:
    return _client("stepfunctions")


def execution_status(execution_arn: str) -> str | None:
    """RUNNING / SUCCEEDED / FAILED / TIMED_OUT / ABORTED / PENDING_REDRIVE, or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        return str(client().describe_execution(executionArn=execution_arn)["status"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return None
        raise translate(err, "describe_execution") from err
