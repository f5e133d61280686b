"""One warm Lambda execution environment: imports a handler once, then serves invocations.

Run as a script by `local.lambda_runtime` (not as `-m`, so the task root alone leads `sys.path`,
as in Lambda). Protocol: JSON lines; requests on stdin, replies on the original stdout. The
handler's own stdout/stderr go to stderr, which the runtime sends to the function's log file.
Mirrors awslambdaric's error shapes: init failures as `Runtime.*` faults, handler exceptions
with the exception class name as errorType (what Step Functions Retry/Catch match on).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method a Python Lambda handler's `context` has."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        env = os.environ
        self.aws_request_id = request_id
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = env["GUARDRAIL_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{self.function_name}")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}


def _exception_error(exc: BaseException) -> dict[str, Any]:
    # Only the function's own frames, as awslambdaric shows them (not this runtime's or importlib's).
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if f.filename != __file__ and not f.filename.startswith("<frozen") and "/importlib/" not in f.filename
    ]
    return _error(type(exc).__name__, str(exc), traceback.format_list(frames))


def load_handler(spec: str) -> Any:
    """Import `module.path.function` the way awslambdaric does, with its fault names."""
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from exc
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise _Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    try:
        return getattr(module, function_name)
    except AttributeError as exc:
        raise _Fault(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from exc


class _Fault(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _watch_parent(parent_pid: int) -> None:
    """Die with the cloud process even if it was SIGKILLed (no orphans holding ports or CPU)."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(0.5)


def main() -> None:
    # The task root (the function's CodeUri) leads sys.path, not this script's folder.
    sys.path[0] = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # handler prints -> the log file
    sys.stdout = sys.stderr
    threading.Thread(target=_watch_parent, args=(int(os.environ["GUARDRAIL_PARENT_PID"]),), daemon=True).start()

    def reply(message: dict[str, Any]) -> None:
        proto.write(json.dumps(message) + "\n")
        proto.flush()

    try:
        handler = load_handler(os.environ["_HANDLER"])
        reply({"ready": True})
    except _Fault as fault:
        reply({"ready": False, "error": _error(fault.error_type, str(fault))})
        return
    except Exception as exc:  # an exception while importing the module (init phase)
        reply({"ready": False, "error": _exception_error(exc)})
        return

    for line in sys.stdin:
        request = json.loads(line)
        try:
            event = json.loads(request["payload"])
        except ValueError as exc:
            reply({"ok": False, "error": _error("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}")})
            continue
        os.environ.update(request.get("credentials") or {})  # the role session, refreshed by the runtime
        context = LambdaContext(request["request_id"], request["deadline_ms"])
        try:
            result = handler(event, context)
        except Exception as exc:
            reply({"ok": False, "error": _exception_error(exc)})
            continue
        try:
            reply({"ok": True, "payload": json.dumps(result)})
        except (TypeError, ValueError) as exc:
            reply({"ok": False, "error": _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")})


if __name__ == "__main__":
    main()
