"""Ship Lambda and SageMaker container output to the in-process moto CloudWatch Logs backend, under the
names AWS uses, so `aws logs tail` / `filter-log-events` and `sam logs` read them from the local cloud.

- Lambda (Lambda developer guide, LoggingConfig: "By default, Lambda functions send logs to a default log
  group named /aws/lambda/<function name>"; operator guide "How CloudWatch structures logs": one stream per
  execution environment, named `YYYY/MM/DD[Function version][Execution environment GUID]`, written as
  `2026/11/29/[$LATEST]<32 hex>`): `ship_lambda_invocation(worker, request_id)` sends the lines of one
  invocation, from its `START RequestId: <id>` line in the function's log file to the end, to the stream
  of that warm worker. The file stays the primary record; shipping never raises.
  Limitation: concurrent invocations of one function share that file, so their handler lines can interleave.
- SageMaker (developer guide "Log groups and streams that Amazon SageMaker AI sends to Amazon CloudWatch
  Logs": group `/aws/sagemaker/Endpoints/[EndpointName]`, stream `[production-variant-name]/[instance-id]`):
  `container_error(endpoint, variant, message, region)`. The emulator has no instances; the instance id is
  a stable `i-` + 17 hex digits derived from the variant (its first instance).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"
_lock = threading.Lock()
_streams: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
MAX_BACKTRACK = 4 * 1024 * 1024  # bytes read back from the end of a log file to find an invocation's START


def write_events(
    group: str, stream: str, messages: list[str], region: str, account: str = DEFAULT_ACCOUNT
) -> None:
    """Append messages (timestamped now, in order) to group/stream, creating both when missing."""
    from moto.logs.models import logs_backends

    if not messages:
        return
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": m} for m in messages]
    with _lock:
        backend = logs_backends[account][region]
        if group not in backend.groups:
            backend.create_log_group(group, {})
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        backend.put_log_events(group, stream, events)


def lambda_stream_name(worker: Any) -> str:
    """One stream per execution environment (warm worker), named as Lambda names it."""
    name = _streams.get(worker)
    if name is None:
        name = _streams[worker] = time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex
    return name


def invocation_lines(path: Path, request_id: str) -> list[str]:
    """The lines of `path` from the last `START RequestId: <request_id>` to the end."""
    marker = f"START RequestId: {request_id}".encode()
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        back = min(size, 64 * 1024)
        while True:
            f.seek(size - back)
            chunk = f.read(back)
            at = chunk.rfind(marker)
            if at >= 0 or back >= min(size, MAX_BACKTRACK):
                break
            back = min(size, back * 4)
    if at < 0:
        return []
    return chunk[at:].decode(errors="replace").splitlines()


def ship_lambda_invocation(worker: Any, request_id: str) -> None:
    """Called by the Lambda runtime after an invocation's REPORT line; never raises."""
    try:
        config = worker.config
        arn = config.arn.split(":")
        lines = invocation_lines(Path(worker._log.name), request_id)
        write_events(f"/aws/lambda/{config.name}", lambda_stream_name(worker), lines, arn[3], arn[4])
    except Exception:  # the log file is the primary record; CloudWatch Logs is a copy
        log.warning("could not ship the Lambda log of %s to CloudWatch Logs", request_id, exc_info=True)


def instance_id(endpoint: str, variant: Any) -> str:
    seed = (
        f"{endpoint}/{variant.name}/{getattr(variant, 'config_name', '')}/{getattr(variant, 'started', '')}"
    )
    return "i-" + hashlib.sha1(seed.encode()).hexdigest()[:17]


def container_error(endpoint: str, variant: Any, message: str, region: str) -> None:
    """Log a container's error for an InvokeEndpoint request as SageMaker does; never raises."""
    try:
        stream = f"{variant.name}/{instance_id(endpoint, variant)}"
        write_events(
            f"/aws/sagemaker/Endpoints/{endpoint}", stream, message.splitlines() or [message], region
        )
    except Exception:
        log.warning("could not log the container error of %s to CloudWatch Logs", endpoint, exc_info=True)
