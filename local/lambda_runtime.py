"""Local Lambda runtime: runs the functions' Python handlers from the working tree in warm workers.

Every invocation in the cloud process lands in `LambdaRuntime.invoke`, by two doors:
- a `before-call.lambda.Invoke` hook on boto3's default session, which moto's Step Functions
  interpreter uses for its Lambda tasks (no HTTP round trip, no Docker);
- moto's own `LambdaBackend.invoke`, patched, for clients calling `lambda invoke` over HTTP.

A function's configuration (Handler, Timeout, MemorySize, Environment as CloudFormation resolved it)
is read from moto's Lambda API on each call, so a config change gets fresh workers, as on AWS. Each
function has a pool of warm worker processes (`local/lambda_worker.py`), one invocation at a time
each; a timeout kills the worker (`Sandbox.Timedout`), a dying worker gives `Runtime.ExitError`,
and the next invocation gets a fresh one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from pydantic import BaseModel, Field

from local.cloudwatch_logs import ship_lambda_invocation

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("lambda_worker.py")
CODE_DIR_TAG = "guardrail:code-dir"  # set by the deployer: where the function's CodeUri lives
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's init phase limit
MAX_RESPONSE_BYTES = 6_291_556  # synchronous invocation response limit


class FunctionConfig(BaseModel):
    """What a worker needs to host one function, as Lambda's API describes it."""

    name: str
    arn: str
    handler: str
    timeout: int = Field(ge=1, le=900)
    memory_mb: int = 128
    environment: dict[str, str] = {}
    code_dir: Path
    role: str = ""  # the execution role (GetFunction Configuration.Role)

    def key(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class InvokeResult(BaseModel):
    payload: bytes
    function_error: str | None = None  # "Unhandled" like Lambda's X-Amz-Function-Error
    request_id: str

    def error(self) -> dict[str, Any] | None:
        return json.loads(self.payload) if self.function_error else None


def _session_env(credentials: dict[str, str]) -> dict[str, str]:
    """A role session as Lambda's environment variables. With AWS_CREDENTIAL_EXPIRATION set, botocore's
    environment provider re-reads the variables before they expire (the worker updates them per invoke)."""
    env = {k: credentials[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    if credentials.get("Expiration"):
        env["AWS_CREDENTIAL_EXPIRATION"] = credentials["Expiration"]
    return env


class FunctionNotFound(LookupError):
    pass


class _WorkerDied(Exception):
    pass


class _Worker:
    """One warm execution environment (a child process)."""

    def __init__(self, config: FunctionConfig, env: dict[str, str], log_file: Path) -> None:
        self.config = config
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_file, "ab", buffering=0)  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=str(config.code_dir),
            start_new_session=True,  # Ctrl-C on the terminal reaches the cloud, which then stops us
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        self._buffer = b""
        self.init_error: dict[str, Any] | None = None

    def write_log(self, text: str) -> None:
        self._log.write(text.encode() + b"\n")

    def wait_ready(self) -> None:
        reply = self._read(time.monotonic() + INIT_TIMEOUT_SECONDS)
        if reply is None:
            raise TimeoutError(f"init did not finish within {INIT_TIMEOUT_SECONDS:.0f} s")
        if not reply.get("ready"):
            self.init_error = reply["error"]

    def invoke(
        self, request_id: str, payload: bytes, deadline: float, deadline_ms: int, credentials: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """The worker's reply, or None when the deadline passed (the caller kills the worker)."""
        request = {"request_id": request_id, "payload": payload.decode("utf-8"), "deadline_ms": deadline_ms}
        if credentials:  # the execution role's current session (refreshed by the runtime)
            request["credentials"] = credentials
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerDied(str(exc)) from exc
        return self._read(deadline)

    def _read(self, deadline: float) -> dict[str, Any] | None:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)  # type: ignore[union-attr]
            if not chunk:
                raise _WorkerDied(self._exit_description())
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _exit_description(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "Runtime exited without providing a reason"
        if code < 0:
            import signal

            return f"Runtime exited with error: signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return f"Runtime exited with error: exit status {code}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kill that does not land
            log.warning("worker %s did not die", self.proc.pid)
        self._selector.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()
        self._log.close()


class LambdaRuntime:
    """Runs Lambda functions deployed in moto with their handlers from the working tree.

    `endpoint_env`: the variables that point SDKs at the local cloud (added to every function's
    environment). `describe`: function name/ARN -> FunctionConfig; by default read from moto's
    Lambda API at `aws_endpoint_url`.
    """

    def __init__(
        self,
        endpoint_env: dict[str, str],
        log_dir: Path,
        region: str = "us-east-1",
        aws_endpoint_url: str | None = None,
        describe: Callable[[str], FunctionConfig] | None = None,
        credentials: Callable[[FunctionConfig], dict[str, str]] | None = None,
    ) -> None:
        self.endpoint_env = endpoint_env
        self.log_dir = Path(log_dir)
        self.region = region
        self._aws_endpoint_url = aws_endpoint_url or endpoint_env.get("AWS_ENDPOINT_URL")
        self._describe = describe or self._describe_from_moto
        # strict IAM: the execution role's session variables for a function (None: fake admin keys)
        self._credentials = credentials
        self._idle: dict[str, list[_Worker]] = {}
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._lambda_client: Any = None
        self._unhooks: list[Callable[[], None]] = []
        self._stopped = False

    # -- configuration --------------------------------------------------------------------------

    def _describe_from_moto(self, function: str) -> FunctionConfig:
        if self._lambda_client is None:
            # A private session: the Invoke hook lives on the default one.
            self._lambda_client = boto3.session.Session().client(
                "lambda",
                region_name=self.region,
                endpoint_url=self._aws_endpoint_url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        try:
            found = self._lambda_client.get_function(FunctionName=function)
        except self._lambda_client.exceptions.ResourceNotFoundException as exc:
            raise FunctionNotFound(function) from exc
        conf = found["Configuration"]
        tags = found.get("Tags", {})
        if CODE_DIR_TAG not in tags:
            raise FunctionNotFound(f"{function} has no {CODE_DIR_TAG} tag: it was not deployed by local.deployer")
        return FunctionConfig(
            name=conf["FunctionName"],
            arn=conf["FunctionArn"],
            handler=conf["Handler"],
            timeout=conf.get("Timeout", 3),
            memory_mb=conf.get("MemorySize", 128),
            # Lambda's variables are strings; moto keeps CloudFormation's Number parameters as numbers.
            environment={k: str(v) for k, v in conf.get("Environment", {}).get("Variables", {}).items()},
            code_dir=Path(tags[CODE_DIR_TAG]),
            role=conf.get("Role", ""),
        )

    def _worker_env(self, config: FunctionConfig) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(config.code_dir),
            "LAMBDA_TASK_ROOT": str(config.code_dir),
            "_HANDLER": config.handler,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{uuid.uuid4().hex}",
            "GUARDRAIL_FUNCTION_ARN": config.arn,
            "GUARDRAIL_PARENT_PID": str(os.getpid()),
            # No X-Ray daemon locally: Powertools' Tracer would only warn.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        env |= self.endpoint_env
        env |= config.environment
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
        if self._credentials is not None:
            env |= _session_env(self._credentials(config))
        return env

    # -- invocation -----------------------------------------------------------------------------

    def invoke(self, function: str, payload: bytes | str | None = None) -> InvokeResult:
        """Invoke synchronously (RequestResponse), as Lambda would. Raises FunctionNotFound."""
        config = self._describe(function)
        if payload is None or payload == b"" or payload == "":
            payload = b"{}"
        data = payload.encode() if isinstance(payload, str) else payload
        request_id = str(uuid.uuid4())
        worker = self._checkout(config)
        start = time.monotonic()
        worker.write_log(f"START RequestId: {request_id} Version: $LATEST")
        keep = False
        try:
            if worker.init_error is None and not worker.alive():
                raise _WorkerDied(worker._exit_description())
            if worker.init_error is not None:
                result = self._failure(request_id, worker.init_error)
            else:
                deadline = start + config.timeout
                session = _session_env(self._credentials(config)) if self._credentials is not None else None
                reply = worker.invoke(request_id, data, deadline, int((time.time() + config.timeout) * 1000), session)
                if reply is None:
                    message = f"Task timed out after {config.timeout:.2f} seconds"
                    worker.write_log(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} {message}")
                    result = self._failure(request_id, {"errorType": "Sandbox.Timedout", "errorMessage": message})
                elif reply["ok"] and len(reply["payload"].encode()) > MAX_RESPONSE_BYTES:
                    keep = True
                    message = f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                    result = self._failure(request_id, {"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message})
                elif reply["ok"]:
                    keep = True
                    result = InvokeResult(payload=reply["payload"].encode(), request_id=request_id)
                else:
                    keep = True
                    result = self._failure(request_id, reply["error"])
        except _WorkerDied as died:
            message = f"RequestId: {request_id} Error: {died}"
            result = self._failure(request_id, {"errorType": "Runtime.ExitError", "errorMessage": message})
        finally:  # whatever happened, the worker goes back to the pool or dies
            duration = (time.monotonic() - start) * 1000
            worker.write_log(f"END RequestId: {request_id}")
            worker.write_log(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tMemory Size: {config.memory_mb} MB")
            ship_lambda_invocation(worker, request_id)  # copy to CloudWatch Logs /aws/lambda/<function>
            self._checkin(worker, keep)
        return result

    @staticmethod
    def _failure(request_id: str, error: dict[str, Any]) -> InvokeResult:
        return InvokeResult(payload=json.dumps(error).encode(), function_error="Unhandled", request_id=request_id)

    def _checkout(self, config: FunctionConfig) -> _Worker:
        key = config.key()
        with self._lock:
            idle = self._idle.setdefault(key, [])
            while idle:
                worker = idle.pop()
                if worker.alive():
                    self._busy.add(worker)
                    return worker
                worker.kill()
            # Configuration changed: retire the workers of the old configuration.
            for old_key in [k for k in self._idle if k != key and self._idle[k] and self._idle[k][0].config.name == config.name]:
                for worker in self._idle.pop(old_key):
                    worker.kill()
        worker = _Worker(config, self._worker_env(config), self.log_dir / f"{config.name}.log")
        with self._lock:
            self._busy.add(worker)
        try:
            worker.wait_ready()
        except (TimeoutError, _WorkerDied) as exc:
            worker.init_error = {"errorType": "Runtime.ExitError", "errorMessage": f"Init failed: {exc}"}
        return worker

    def _checkin(self, worker: _Worker, keep: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            if keep and not self._stopped and worker.init_error is None and worker.alive():
                self._idle.setdefault(worker.config.key(), []).append(worker)
                return
        worker.kill()

    def worker_pids(self) -> list[int]:
        with self._lock:
            workers = [w for pool in self._idle.values() for w in pool] + list(self._busy)
        return [w.proc.pid for w in workers if w.alive()]

    def prewarm(self, functions: list[str]) -> threading.Thread:
        """Start one warm worker per function, one after the other, in the background (like provisioned
        concurrency): the first execution then skips the cold starts."""

        def run() -> None:
            for function in functions:
                if self._stopped:
                    return
                try:
                    worker = self._checkout(self._describe(function))
                except Exception:
                    log.warning("could not prewarm %s", function, exc_info=True)
                    continue
                self._checkin(worker, keep=True)

        thread = threading.Thread(target=run, name="lambda-prewarm", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopped = True  # invocations still in flight kill their worker when they finish
        for unhook in self._unhooks:
            unhook()
        self._unhooks.clear()
        with self._lock:
            idle = [w for pool in self._idle.values() for w in pool]
            busy = list(self._busy)
            self._idle.clear()
        for worker in idle:
            worker.kill()
        for worker in busy:  # its invocation sees the exit and cleans up (pipes, log) when it checks in
            if worker.alive():
                worker.proc.kill()

    # -- the two doors ---------------------------------------------------------------------------

    def install(self) -> None:
        """Answer Lambda Invoke calls made in this process (boto3 default session) and via moto."""
        self._install_boto_hook()
        self._install_moto_patch()

    def _install_boto_hook(self) -> None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION._session.get_component("event_emitter")  # type: ignore[union-attr]

        def remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["guardrail_invoke_params"] = dict(params)

        def answer(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
            api_params = context.get("guardrail_invoke_params") or {}
            if api_params.get("InvocationType", "RequestResponse") != "RequestResponse":
                return None  # async/dry-run: let moto answer
            function = api_params.get("FunctionName") or unquote(params["url_path"].rsplit("/", 2)[-2])
            payload = api_params.get("Payload", b"{}")
            if hasattr(payload, "read"):
                payload = payload.read()
            try:
                result = self.invoke(function, payload)
            except FunctionNotFound:
                return None  # moto answers with its ResourceNotFoundException
            except Exception as exc:  # a fault of this runtime: Lambda's own service error, as on AWS
                log.exception("invoking %s failed", function)
                error = {"Error": {"Code": "ServiceException", "Message": f"local Lambda runtime: {exc}"},
                         "ResponseMetadata": {"HTTPStatusCode": 500}}
                raise ClientError(error, "Invoke") from exc  # type: ignore[arg-type]
            headers = {"x-amz-executed-version": "$LATEST", "x-amzn-requestid": result.request_id}
            parsed: dict[str, Any] = {
                "StatusCode": 200,
                "ExecutedVersion": "$LATEST",
                "Payload": StreamingBody(io.BytesIO(result.payload), len(result.payload)),
                "ResponseMetadata": {"RequestId": result.request_id, "HTTPStatusCode": 200, "HTTPHeaders": headers},
            }
            if result.function_error:
                parsed["FunctionError"] = result.function_error
                headers["x-amz-function-error"] = result.function_error
            return AWSResponse(params.get("url", ""), 200, headers, None), parsed

        events.register("before-parameter-build.lambda.Invoke", remember_params, unique_id="guardrail-invoke-params")
        events.register("before-call.lambda.Invoke", answer, unique_id="guardrail-invoke")

        def unhook() -> None:
            events.unregister("before-parameter-build.lambda.Invoke", unique_id="guardrail-invoke-params")
            events.unregister("before-call.lambda.Invoke", unique_id="guardrail-invoke")

        self._unhooks.append(unhook)

    def _install_moto_patch(self) -> None:
        from moto.awslambda.models import LambdaBackend

        original = LambdaBackend.invoke
        runtime = self

        def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> Any:
            fn = backend.get_function(function_name, qualifier)  # raises moto's not-found error
            invocation_type = {k.lower(): v for k, v in headers.items()}.get("x-amz-invocation-type", "RequestResponse")
            if invocation_type == "DryRun":
                return b""
            if invocation_type == "Event":
                threading.Thread(target=runtime.invoke, args=(fn.function_arn, body), daemon=True).start()
                return b""
            try:
                result = runtime.invoke(fn.function_arn, body)
            except FunctionNotFound:  # not one of ours: moto's own behaviour
                return original(backend, function_name, qualifier, body, headers, response_headers)
            if result.function_error:
                response_headers["x-amz-function-error"] = result.function_error
            response_headers["x-amz-executed-version"] = "$LATEST"
            response_headers["Content-Length"] = str(len(result.payload))
            return result.payload

        LambdaBackend.invoke = invoke  # type: ignore[method-assign,assignment]

        def unpatch() -> None:
            LambdaBackend.invoke = original  # type: ignore[method-assign,assignment]

        self._unhooks.append(unpatch)
