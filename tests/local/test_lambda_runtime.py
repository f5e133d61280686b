"""The local Lambda runtime: warm workers, Lambda-shaped errors, timeouts, crashes, the boto3 hook."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from local.lambda_runtime import FunctionConfig, FunctionNotFound, LambdaRuntime

HANDLERS = Path(__file__).parent / "fixtures" / "handlers"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"

# name -> (handler, timeout seconds)
FUNCTIONS = {
    "echo": ("app.echo", 5),
    "fail": ("app.fail", 5),
    "sleepy": ("app.sleep", 1),
    "slow": ("app.sleep", 20),
    "die": ("app.die", 5),
    "not-json": ("app.not_json", 5),
    "big": ("app.big", 5),
    "broken-init": ("broken_init.handler", 5),
    "missing-module": ("nope.handler", 5),
    "bad-handler": ("app", 5),
}


def describe(function: str) -> FunctionConfig:
    name = function.rsplit(":", 1)[-1]
    if name not in FUNCTIONS:
        raise FunctionNotFound(function)
    handler, timeout = FUNCTIONS[name]
    return FunctionConfig(
        name=name,
        arn=ARN.format(name),
        handler=handler,
        timeout=timeout,
        memory_mb=256,
        environment={"GREETING": "hi", "AWS_ENDPOINT_URL": "http://from-template"},
        code_dir=HANDLERS,
    )


@pytest.fixture
def runtime(tmp_path: Path):
    rt = LambdaRuntime({"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SAGEMAKER": "http://sm"},
                       tmp_path / "logs", describe=describe)
    yield rt
    rt.stop()


def payload(result) -> dict:
    return json.loads(result.payload)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"


def test_handler_gets_event_context_and_exactly_its_environment(runtime):
    result = runtime.invoke("echo", b'{"a": 1}')
    assert result.function_error is None
    body = payload(result)
    assert body["event"] == {"a": 1}
    assert body["request_id"] == result.request_id
    assert body["function_name"] == "echo"
    assert body["arn"] == ARN.format("echo")
    assert body["memory"] == 256
    assert body["log_group"] == "/aws/lambda/echo"
    assert 0 < body["remaining_ms"] <= 5000
    env = body["env"]
    assert env["GREETING"] == "hi"
    # the function's own variables win over the cloud's endpoint variables, as they would on AWS
    assert env["AWS_ENDPOINT_URL"] == "http://from-template"
    assert env["AWS_ENDPOINT_URL_SAGEMAKER"] == "http://sm"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo"


def test_worker_stays_warm_between_invocations(runtime):
    first, second = payload(runtime.invoke("echo", b"{}")), payload(runtime.invoke("echo", b"{}"))
    assert first["pid"] == second["pid"]
    assert first["booted_at"] == second["booted_at"]  # module imported once (init ran once)
    assert runtime.worker_pids() == [first["pid"]]


def test_concurrent_invocations_get_separate_workers(runtime):
    results = []
    threads = [threading.Thread(target=lambda: results.append(runtime.invoke("slow", b'{"seconds": 0.5}')))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.function_error for r in results] == [None, None]
    assert len(runtime.worker_pids()) == 2


def test_handler_exception_is_returned_like_lambda(runtime):
    result = runtime.invoke("fail", b'{"endpoint": "e1"}')
    assert result.function_error == "Unhandled"
    error = payload(result)
    assert error["errorType"] == "EndpointNotReady"  # what Step Functions Retry/Catch match on
    assert error["errorMessage"] == "endpoint e1 is Updating"
    assert isinstance(error["stackTrace"], list)
    assert any("app.py" in frame and "in fail" in frame for frame in error["stackTrace"])
    assert not any("lambda_worker.py" in frame for frame in error["stackTrace"])
    # the worker survives a handled error and is reused
    assert runtime.invoke("echo", b"{}").function_error is None


def test_timeout_kills_the_worker_and_reports_sandbox_timedout(runtime):
    start = time.monotonic()
    result = runtime.invoke("sleepy", b'{"seconds": 30}')
    elapsed = time.monotonic() - start
    assert result.function_error == "Unhandled"
    assert payload(result) == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 1.00 seconds"}
    assert 1.0 <= elapsed < 5.0
    assert runtime.worker_pids() == []  # the timed-out worker is gone
    again = runtime.invoke("sleepy", b'{"seconds": 0}')
    assert payload(again) == {"slept": 0}


def test_worker_exit_mid_invocation_gives_runtime_exit_error_then_a_fresh_worker(runtime):
    result = runtime.invoke("die", b"{}")
    assert result.function_error == "Unhandled"
    error = payload(result)
    assert error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]
    assert runtime.worker_pids() == []


def test_worker_killed_from_outside_mid_invocation_recovers(runtime):
    first = payload(runtime.invoke("slow", b'{"seconds": 0}'))
    pid = runtime.worker_pids()[0]
    assert first == {"slept": 0}

    killer = threading.Timer(0.5, os.kill, args=(pid, signal.SIGKILL))
    killer.start()
    result = runtime.invoke("slow", b'{"seconds": 10}')
    killer.join()
    assert payload(result)["errorType"] == "Runtime.ExitError"
    assert "signal: kill" in payload(result)["errorMessage"]
    assert not alive(pid)
    assert payload(runtime.invoke("slow", b'{"seconds": 0}')) == {"slept": 0}
    assert runtime.worker_pids() != [pid]


def test_init_errors_are_reported_like_awslambdaric(runtime):
    broken = payload(runtime.invoke("broken-init", b"{}"))
    assert broken["errorType"] == "ValueError"
    assert broken["errorMessage"] == "MODEL_BUCKET is not set"
    missing = payload(runtime.invoke("missing-module", b"{}"))
    assert missing["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'nope'" in missing["errorMessage"]
    assert payload(runtime.invoke("bad-handler", b"{}"))["errorType"] == "Runtime.MalformedHandlerName"
    assert runtime.worker_pids() == []  # failed inits are not kept warm


def test_bad_payload_and_unserializable_result(runtime):
    assert payload(runtime.invoke("echo", b"not json"))["errorType"] == "Runtime.UnmarshalError"
    assert payload(runtime.invoke("not-json", b"{}"))["errorType"] == "Runtime.MarshalError"
    assert payload(runtime.invoke("echo", None))["event"] == {}


def test_unknown_function(runtime):
    with pytest.raises(FunctionNotFound):
        runtime.invoke("nobody", b"{}")


def test_handler_output_goes_to_the_function_log(runtime, tmp_path):
    runtime.invoke("die", b"{}")
    log = (tmp_path / "logs" / "die.log").read_text()
    assert "about to die" in log
    assert "START RequestId" in log and "REPORT RequestId" in log


def test_stop_leaves_no_worker(runtime):
    runtime.invoke("echo", b"{}")
    runtime.invoke("fail", b"{}")
    pids = runtime.worker_pids()
    assert len(pids) == 2
    runtime.stop()
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)


def test_boto3_invoke_is_answered_by_the_hook_without_network(runtime):
    """The door moto's Step Functions interpreter uses: boto3's default session."""
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    try:
        runtime.install()
        # Port 1 refuses connections: any answer must come from the hook.
        lam = boto3.client("lambda", region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                           aws_access_key_id="a", aws_secret_access_key="b")
        ok = lam.invoke(FunctionName=ARN.format("echo"), Payload=b'{"x": 2}')
        assert ok["StatusCode"] == 200 and "FunctionError" not in ok
        assert json.load(ok["Payload"])["event"] == {"x": 2}
        failed = lam.invoke(FunctionName="fail", Payload=io.BytesIO(b"{}"))
        assert failed["FunctionError"] == "Unhandled"
        assert json.load(failed["Payload"])["errorType"] == "EndpointNotReady"
    finally:
        runtime.stop()  # also removes the hook
        boto3.DEFAULT_SESSION = saved


def test_a_fault_of_the_runtime_is_lambdas_service_exception(tmp_path):
    """Step Functions then sees `Lambda.ServiceException`, which ASL Retry rules commonly cover."""

    def broken_describe(function: str) -> FunctionConfig:
        raise RuntimeError("moto is gone")

    rt = LambdaRuntime({}, tmp_path, describe=broken_describe)
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    try:
        rt.install()
        lam = boto3.client("lambda", region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                           aws_access_key_id="a", aws_secret_access_key="b")
        with pytest.raises(ClientError, match="moto is gone") as raised:
            lam.invoke(FunctionName="echo", Payload=b"{}")
        assert raised.value.response["Error"]["Code"] == "ServiceException"
    finally:
        rt.stop()
        boto3.DEFAULT_SESSION = saved


def test_prewarm_starts_one_warm_worker_per_function(runtime):
    runtime.prewarm(["echo", "fail", "broken-init"]).join(timeout=30)
    pids = runtime.worker_pids()
    assert len(pids) == 2  # a failing init is not kept
    assert payload(runtime.invoke("echo", b"{}"))["pid"] in pids


def test_an_invocation_finishing_after_stop_does_not_keep_its_worker(runtime):
    results = []
    thread = threading.Thread(target=lambda: results.append(runtime.invoke("slow", b'{"seconds": 1}')))
    thread.start()
    deadline = time.monotonic() + 10
    while not runtime.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.02)
    runtime.stop()
    thread.join()
    assert runtime.worker_pids() == []


def test_a_response_over_lambdas_limit_is_an_error(runtime):
    assert payload(runtime.invoke("big", b'{"size": 1000}')) == "x" * 1000
    error = payload(runtime.invoke("big", b'{"size": 6300000}'))
    assert error["errorType"] == "Function.ResponseSizeTooLarge"
