"""HTTP front of the emulator: SageMaker's JSON 1.1 control plane and the REST runtime on one port.

`POST /` with `X-Amz-Target: SageMaker.<Op>` is the control plane; `POST /endpoints/{name}/invocations` is
InvokeEndpoint. A threaded HTTP/1.1 server with keep-alive: each client connection has its own thread and
xgboost releases the GIL while predicting, so requests are served concurrently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from local.sagemaker import iam as sm_iam
from local.sagemaker.backend import Backend
from local.sagemaker.errors import (
    AccessDeniedException,
    InternalFailure,
    SageMakerError,
    UnknownOperationException,
    ValidationError,
)
from local.sagemaker.validation import parse_request, to_wire

log = logging.getLogger(__name__)

JSON11 = "application/x-amz-json-1.1"
# POST {"operation": <control-plane op>, "count": n}: the next n calls answer ThrottlingException (tests).
FAULTS_PATH = "/_guardrail/faults"


class ThrottlingException(SageMakerError):
    code = "ThrottlingException"


class RuntimeAccessDenied(AccessDeniedException):
    """sagemaker-runtime (REST-JSON) answers an IAM denial with 403 (assumption: the runtime API lists no
    AccessDeniedException; 403 is AWS's REST convention)."""

    status = 403


def _authorize(headers: Any, op: str, params: dict[str, Any], backend: Backend,
               denied: type[AccessDeniedException] = AccessDeniedException) -> None:
    """The caller (SigV4 access key → principal; None = the account's admin) must be allowed every IAM action
    the operation needs (local.sagemaker.iam.checks)."""
    try:
        principal = sm_iam.caller(headers)
    except sm_iam.Rejected as exc:
        error = SageMakerError(exc.message)
        error.code, error.status = exc.code, exc.status
        raise error from None
    if principal is None:
        return
    for action, resources, context in sm_iam.checks(op, params, backend.arn):
        try:
            sm_iam.authorize(principal, action, resources, context)
        except sm_iam.Denied as exc:
            raise denied(str(exc)) from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "SageMakerEmulator/1.0"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, exc: SageMakerError, content_type: str) -> None:
        self._send(exc.status, json.dumps(exc.body()).encode(), content_type, {"x-amzn-ErrorType": exc.code})

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._send(200, b'{"status": "ok"}', "application/json")
        else:
            self._error(UnknownOperationException(f"No route for GET {self.path}"), "application/json")

    def do_POST(self) -> None:
        received = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        if path.startswith("/endpoints/") and path.endswith("/invocations"):
            self._invoke(unquote(path[len("/endpoints/") : -len("/invocations")]), body, received)
        elif path == FAULTS_PATH:
            self._set_faults(body)
        elif path == "/":
            self._control(body)
        else:
            self._error(UnknownOperationException(f"No route for POST {path}"), "application/json")

    def _control(self, body: bytes) -> None:
        target = self.headers.get("X-Amz-Target", "")
        service, _, op = target.partition(".")
        try:
            if service != "SageMaker" or not op:
                raise UnknownOperationException(f"Unknown or missing X-Amz-Target: {target!r}")
            params = parse_request(op, body)
            _authorize(self.headers, op, params, self.server.backend)
            if self.server.take_fault(op):
                raise ThrottlingException("Rate exceeded (fault injected through " + FAULTS_PATH + ")")
            result = self.server.backend.dispatch(op, params)
        except SageMakerError as exc:
            return self._error(exc, JSON11)
        except Exception as exc:
            log.exception("SageMaker.%s failed", op)
            return self._error(InternalFailure(f"{type(exc).__name__}: {exc}"), JSON11)
        self._send(200, json.dumps(to_wire(result)).encode(), JSON11)
        return None

    def _set_faults(self, body: bytes) -> None:
        """Fault injection for tests: {"operation": "UpdateEndpoint", "count": 3} throttles the next 3 calls."""
        try:
            spec = json.loads(body or b"{}")
            if "kill" in spec or "service" in spec:  # a Lambda crash or a moto API throttle (local/faults.py)
                from local.faults import FAULTS

                return self._send(200, json.dumps(FAULTS.arm(spec)).encode(), "application/json")
            op, count = str(spec["operation"]), int(spec.get("count", 1))
        except (ValueError, KeyError, TypeError) as exc:
            return self._error(ValidationError(f"fault spec needs operation and count: {exc!r}"), "application/json")
        with self.server.faults_lock:
            self.server.faults[op] = self.server.faults.get(op, 0) + count
            pending = dict(self.server.faults)
        self._send(200, json.dumps({"pending": pending, "injected": dict(self.server.injected)}).encode(),
                   "application/json")
        return None

    def _invoke(self, endpoint: str, body: bytes, received: float) -> None:
        h = self.headers
        try:
            if not endpoint:
                raise ValidationError("EndpointName is required.")
            _authorize(h, "InvokeEndpoint", {"EndpointName": endpoint}, self.server.backend, RuntimeAccessDenied)
            answer = self.server.backend.runtime.invoke(
                endpoint, body, h.get("Content-Type", ""), h.get("Accept", ""),
                h.get("X-Amzn-SageMaker-Target-Variant"), h.get("X-Amzn-SageMaker-Inference-Id"), received,
            )
        except SageMakerError as exc:
            return self._error(exc, "application/json")
        except Exception as exc:
            log.exception("InvokeEndpoint %s failed", endpoint)
            return self._error(InternalFailure(f"{type(exc).__name__}: {exc}"), "application/json")
        self._send(200, answer.body, answer.content_type, {"x-Amzn-Invoked-Production-Variant": answer.variant})
        return None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # joined on close, so stop() leaves no threads behind
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], backend: Backend) -> None:
        super().__init__(address, _Handler)
        self.backend = backend
        self.faults: dict[str, int] = {}  # operation -> throttles still to inject
        self.injected: dict[str, int] = {}  # operation -> throttles injected so far
        self.faults_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def take_fault(self, op: str) -> bool:
        with self.faults_lock:
            if self.faults.get(op, 0) <= 0:
                return False
            self.faults[op] -= 1
            self.injected[op] = self.injected.get(op, 0) + 1
            return True

    def process_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):  # a client went away (or stop() closed its connection)
            log.debug("connection from %s closed: %s", client_address, exc)
        else:
            log.exception("error serving %s", client_address)

    def close_connections(self) -> None:
        """Idle keep-alive connections would otherwise hold their threads forever."""
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


class EmulatorServer:
    """The local SageMaker (control plane + runtime) next to a moto server that provides S3 and CloudWatch."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        aws_endpoint_url: str | None = None,
        region: str = "us-east-1",
        provisioning_delay: float = 0.5,
        alarm_poll_interval: float = 0.5,
        flush_interval: float = 1.0,
    ) -> None:
        self.host, self.port = host, port
        self.backend = Backend(aws_endpoint_url, region, provisioning_delay, alarm_poll_interval, flush_interval)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("EmulatorServer is not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> EmulatorServer:
        self.backend.start()
        self._httpd = _HTTPServer((self.host, self.port), self.backend)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sm-emulator-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self.backend.stop()
        self._httpd = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
