"""Fault injection on the local cloud, on demand (issue 12 §8; tests/faults/ drives it).

Faults armed here act inside the cloud's process:
- `kill`: the next N invocations of a function (name contains the fragment) crash AFTER the handler ran: the worker
  is SIGKILLed before its reply is read, so the caller sees `Runtime.ExitError` although the side effects happened
  (the worst case for idempotency: a DynamoDB delete, an SNS publish, an UpdateEndpoint already done).
- `throttle`: the next N calls of a moto-served API (service + operation, e.g. dynamodb PutItem, sns Publish,
  cloudwatch DescribeAlarms, stepfunctions DescribeExecution) answer the service's throttling error
  (`ThrottlingException`, `Throttling` for query-protocol services), serialized by moto in the API's own
  protocol. SageMaker calls are throttled by the emulator itself (local/sagemaker/server.py, same endpoint).
The test-facing endpoint is the emulator's `POST /_guardrail/faults` (FAULTS_PATH): {"kill": "ReleaseLock",
"count": 1} or {"service": "dynamodb", "operation": "DeleteItem", "count": 2}; the answer lists what is pending
and what was injected. Deleting an alarm, stopping an execution or moving the endpoint need no hook: tests do them
with the ordinary APIs, as an operator would.
"""

from __future__ import annotations

import json
import threading
from typing import Any

_QUERY_PROTOCOL = {"sns", "sqs", "iam", "sts", "cloudformation"}  # "Throttling" is their code; JSON APIs say ...Exception


class FaultRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kills: dict[str, int] = {}  # function name fragment -> crashes still to inject
        self.throttles: dict[tuple[str, str], int] = {}  # (service, Operation) -> throttles still to inject
        self.injected: dict[str, int] = {}  # "kill:<fragment>" / "<service>:<Operation>" -> injected so far

    def arm(self, spec: dict[str, Any]) -> dict[str, Any]:
        count = int(spec.get("count", 1))
        with self._lock:
            if "kill" in spec:
                fragment = str(spec["kill"])
                self.kills[fragment] = self.kills.get(fragment, 0) + count
            else:
                key = (str(spec["service"]).lower(), str(spec["operation"]))
                self.throttles[key] = self.throttles.get(key, 0) + count
            return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return {
            "kills": {k: v for k, v in self.kills.items() if v > 0},
            "throttles": {f"{s}:{o}": v for (s, o), v in self.throttles.items() if v > 0},
            "injected": dict(self.injected),
        }

    def take_kill(self, function_name: str) -> bool:
        with self._lock:
            for fragment, left in self.kills.items():
                if left > 0 and fragment in function_name:
                    self.kills[fragment] = left - 1
                    self.injected[f"kill:{fragment}"] = self.injected.get(f"kill:{fragment}", 0) + 1
                    return True
        return False

    def take_throttle(self, service: str, operation: str) -> bool:
        key = (service.lower(), operation)
        with self._lock:
            if self.throttles.get(key, 0) <= 0:
                return False
            self.throttles[key] -= 1
            name = f"{key[0]}:{operation}"
            self.injected[name] = self.injected.get(name, 0) + 1
            return True


FAULTS = FaultRegistry()
_installed: dict[str, Any] = {}


def install() -> None:
    """Hook the Lambda workers and moto's action dispatch in this process (idempotent)."""
    from moto.core.responses import BaseResponse

    from local.lambda_runtime import _Worker, _WorkerDied

    if _installed:
        return
    original_invoke = _Worker.invoke
    original_call = BaseResponse.call_action

    def invoke(self: _Worker, *args: Any, **kwargs: Any) -> Any:
        reply = original_invoke(self, *args, **kwargs)
        if reply is not None and FAULTS.take_kill(self.config.name):
            self.proc.kill()  # the handler ran; its reply is lost with the worker
            self.proc.wait(timeout=5)
            raise _WorkerDied("killed by fault injection after the handler ran (signal 9)")
        return reply

    def call_action(self: BaseResponse) -> Any:
        service = str(getattr(self, "service_name", "") or "")
        try:
            operation = self._get_action()
        except Exception:
            operation = ""
        if service and operation and FAULTS.take_throttle(service, operation):
            return throttling_response(service, dict(self.headers or {}), dict(self.response_headers or {}))
        return original_call(self)

    _Worker.invoke = invoke  # type: ignore[method-assign]
    BaseResponse.call_action = call_action  # type: ignore[method-assign]
    _installed.update(invoke=original_invoke, call_action=original_call)


MESSAGE = "Rate exceeded (fault injected by local/faults.py)"


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    n = len(data)
    head = bytes([0x60 + n]) if n < 24 else bytes([0x78, n]) if n < 256 else bytes([0x79]) + n.to_bytes(2, "big")
    return head + data


def throttling_response(service: str, request_headers: dict[str, str], headers: dict[str, Any]) -> tuple[int, dict[str, Any], Any]:
    """A 400 throttling error in the protocol the request used: rpc-v2-cbor (CloudWatch in recent SDKs), JSON, or
    query XML (SNS)."""
    lowered = {k.lower(): v for k, v in request_headers.items()}
    if service.lower() in _QUERY_PROTOCOL or "x-www-form-urlencoded" in lowered.get("content-type", ""):
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                f"<Message>{MESSAGE}</Message></Error><RequestId>fault</RequestId></ErrorResponse>")  # fmt: skip
        return 400, headers | {"Content-Type": "text/xml"}, body
    if "rpc-v2-cbor" in lowered.get("smithy-protocol", ""):
        body = bytes([0xA2]) + _cbor_text("__type") + _cbor_text("ThrottlingException")
        body += _cbor_text("message") + _cbor_text(MESSAGE)
        return 400, headers | {"Content-Type": "application/cbor", "Smithy-Protocol": "rpc-v2-cbor"}, body
    body = json.dumps({"__type": "ThrottlingException", "message": MESSAGE})
    return 400, headers | {"Content-Type": "application/x-amz-json-1.0"}, body


def uninstall() -> None:
    from moto.core.responses import BaseResponse

    from local.lambda_runtime import _Worker

    if not _installed:
        return
    _Worker.invoke = _installed.pop("invoke")  # type: ignore[method-assign]
    BaseResponse.call_action = _installed.pop("call_action")  # type: ignore[method-assign]
