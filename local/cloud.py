"""The local cloud: one process hosting moto, the SageMaker emulator, the alarm evaluator, the
EventBridge -> Step Functions bridge and the Lambda runtime, with the SAM app deployed in it.

- `LocalCloud(...).start()` / `.stop()` / `with LocalCloud(...) as cloud:` in this process
  (moto's state is per process: one local cloud per process).
- `LocalCloud(...).foreground()`: `guardrail up`; writes `.guardrail/cloud.json`, stops cleanly on
  SIGTERM/SIGINT. `LocalCloud.down(workdir)`: `guardrail down`, via the pid in that file.
- `LocalCloud.spawn(...)`: a local cloud in a child process on free ports, for tests and the demo;
  returns a `CloudProcess` with `.env`, `.outputs`, `.state`, `.stop()`.
- `python -m local.cloud up|down [...]` does the same from a shell.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from local.env import DEFAULT_WORKDIR, FAKE_CREDENTIALS, STATE_FILE, CloudState, cloud_env, load_state

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"
DEFAULT_SAMCONFIG = PROJECT_ROOT / "samconfig.toml"


def _check_port_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise RuntimeError(
                f"port {port} on {host} is in use: is a local cloud already running? (`guardrail down`)"
            ) from exc


def _uninstall_faults() -> None:
    from local import faults

    faults.uninstall()


def _uninstall_iam() -> None:
    from local.iam import enforce

    enforce.uninstall()


class LocalCloud:
    def __init__(
        self,
        moto_port: int = 5055,
        sagemaker_port: int = 5056,
        region: str = "us-east-1",
        workdir: str | Path = DEFAULT_WORKDIR,
        template: str | Path | None = DEFAULT_TEMPLATE,
        samconfig: str | Path | None = DEFAULT_SAMCONFIG,
        config_env: str = "local",
        parameter_overrides: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        alarm_interval: float = 1.0,
        prewarm: bool = True,
        strict: bool = True,
    ) -> None:
        self.moto_port, self.sagemaker_port = moto_port, sagemaker_port
        self.region, self.host = region, host
        self.workdir = Path(workdir).resolve()
        self.template = Path(template) if template else None  # None: start empty, deploy nothing
        self.samconfig = Path(samconfig) if samconfig and Path(samconfig).exists() else None
        self.config_env = config_env
        self.parameter_overrides = parameter_overrides or {}
        self.alarm_interval = alarm_interval
        self.prewarm = prewarm  # start a warm Lambda worker per function after deploying
        # strict IAM (docs/local-cloud.md "Strict IAM"): assumed-role requests are authorized, Lambda
        # workers act as their execution role. strict=False: no IAM checks, workers use the admin keys.
        self.strict = strict
        self.role_sessions: Any = None
        self.deployment: Any = None  # local.deployer.Deployment once deployed
        self.alert_queue_url: str | None = None
        self.runtime: Any = None
        self.bridge: Any = None
        self.emulator: Any = None
        self.evaluator: Any = None
        self._moto: Any = None
        self._env: dict[str, str] | None = None
        self._saved_moto_port: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        if self._env is None:
            raise RuntimeError("the local cloud is not started")
        return self._env

    @property
    def outputs(self) -> dict[str, str]:
        return self.deployment.outputs if self.deployment else {}

    def start(self) -> LocalCloud:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        from local.alarms import AlarmEvaluator
        from local.bridge import EventBridgeDelivery
        from local.lambda_runtime import LambdaRuntime
        from local.sagemaker.server import EmulatorServer

        if self.template is not None and not self.template.exists():
            raise FileNotFoundError(f"template {self.template} not found")
        _check_port_free(self.host, self.moto_port)
        _check_port_free(self.host, self.sagemaker_port)

        # In-process SDK users (the alarm evaluator, moto's interpreter) need some credentials.
        for key, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        os.environ.setdefault("AWS_DEFAULT_REGION", self.region)
        # Step Functions executions run on moto's interpreter; its SDK clients go to MOTO_PORT.
        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.moto_port, verbose=False)
        self._moto.start()
        self.moto_port = self._moto.get_host_and_port()[1]
        moto_url = f"http://{self.host}:{self.moto_port}"
        self._saved_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.moto_port)

        self.emulator = EmulatorServer(self.host, port=self.sagemaker_port, aws_endpoint_url=moto_url, region=self.region)
        self.emulator.start()
        self.sagemaker_port = int(self.emulator.url.rsplit(":", 1)[1])
        self._env = cloud_env(moto_url, self.emulator.url, self.region)

        credentials = None
        if self.strict:
            from local.iam import enforce
            from local.iam.sessions import RoleSessions

            enforce.install()
            self.role_sessions = RoleSessions()
            log.info("strict IAM on: assumed-role requests are authorized; Lambda workers act as their role")
            credentials = self.role_sessions.for_function
        self.runtime = LambdaRuntime(
            self._env, self.workdir / "logs" / "lambda", self.region, moto_url, credentials=credentials
        )
        self.runtime.install()
        from local import faults

        faults.install()  # armed on demand through the emulator's /_guardrail/faults (tests/faults/)
        from local import sfn_tasks

        sfn_tasks.install()  # callback tasks and StopExecution as on AWS (approval gates, abort: issue 15)
        self.bridge = EventBridgeDelivery(self._env)
        self.bridge.install()
        self.evaluator = AlarmEvaluator(aws_endpoint_url=moto_url, region=self.region, interval=self.alarm_interval)
        self.evaluator.start()
        log.info("local cloud: moto %s, SageMaker %s", moto_url, self.emulator.url)

        if self.template is not None:
            self.deploy()
        self._state().write(self.workdir)

    def deploy(self) -> Any:
        """Deploy the template (samconfig's `[<config_env>.deploy.parameters]` + overrides); subscribe the alert queue."""
        from local.alerts import ensure_alert_queue
        from local.deployer import deploy

        if self.template is None:
            raise RuntimeError("no template to deploy")
        started = time.monotonic()
        self.deployment = deploy(
            self.template, self.env, self.samconfig, self.config_env, overrides=self.parameter_overrides
        )
        if self.deployment.topics:
            self.alert_queue_url = ensure_alert_queue(self.env, self.deployment.topics)
        if self.prewarm:
            self.runtime.prewarm(list(self.deployment.functions.values()))
        log.info("deployed %s in %.1f s", self.deployment.stack_name, time.monotonic() - started)
        return self.deployment

    def _state(self) -> CloudState:
        d = self.deployment
        return CloudState(
            pid=os.getpid(),
            region=self.region,
            moto_port=self.moto_port,
            sagemaker_port=self.sagemaker_port,
            moto_url=self.env["AWS_ENDPOINT_URL"],
            sagemaker_url=self.env["AWS_ENDPOINT_URL_SAGEMAKER"],
            stack_name=d.stack_name if d else None,
            outputs=d.outputs if d else {},
            resources=d.resources if d else {},
            state_machines={k: v.arn for k, v in d.state_machines.items()} if d else {},
            alert_queue_url=self.alert_queue_url,
            log_dir=str(self.workdir / "logs"),
        )

    def stop(self) -> None:
        """Stop every part (each step tolerates a part that never started); no child process survives."""
        for name, stop in (
            ("bridge", lambda: self.bridge and self.bridge.uninstall()),
            ("alarm evaluator", lambda: self.evaluator and self.evaluator.stop()),
            ("SageMaker emulator", lambda: self.emulator and self.emulator.stop()),
            ("Lambda runtime", lambda: self.runtime and self.runtime.stop()),
            ("moto", lambda: self._moto and self._moto._server and self._moto.stop()),
            ("strict IAM", lambda: self.strict and _uninstall_iam()),
            ("fault hooks", _uninstall_faults),
        ):
            try:
                stop()
            except Exception:
                log.exception("stopping the %s failed", name)
        self.bridge = self.evaluator = self.emulator = self.runtime = self._moto = None
        if self._env is not None:
            state_file = self.workdir / STATE_FILE
            with contextlib.suppress(FileNotFoundError, ValueError):
                if load_state(self.workdir).pid == os.getpid():
                    state_file.unlink()
            if self._saved_moto_port is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = self._saved_moto_port
        self._env = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- guardrail up / down ---------------------------------------------------------------------

    def foreground(self, on_ready: Any = None, parent_pid: int | None = None) -> None:
        """Run until SIGTERM or SIGINT (or, with `parent_pid`, until that parent is gone), then stop
        cleanly. `on_ready(cloud)` is called once started."""
        stopping = threading.Event()

        def request_stop(signum: int, _frame: Any) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            stopping.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            if on_ready is not None:
                on_ready(self)
            while not stopping.wait(0.5):
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.info("parent %s is gone: stopping", parent_pid)  # e.g. a killed test run
                    break
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @staticmethod
    def down(workdir: str | Path = DEFAULT_WORKDIR, timeout: float = 30.0) -> bool:
        """Stop the local cloud whose pid is in `<workdir>/cloud.json`. False if none was running."""
        workdir = Path(workdir)
        try:
            state = load_state(workdir)
        except FileNotFoundError:
            return False
        if not _is_local_cloud(state.pid):
            (workdir / STATE_FILE).unlink(missing_ok=True)  # stale: that process is gone
            return False
        os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _is_local_cloud(state.pid):
            time.sleep(0.1)
        if _is_local_cloud(state.pid):
            log.warning("local cloud %s did not stop in %.0f s: killing it", state.pid, timeout)
            os.kill(state.pid, signal.SIGKILL)  # its Lambda workers notice and exit
        (workdir / STATE_FILE).unlink(missing_ok=True)
        return True

    # -- in a child process (tests, demo) --------------------------------------------------------

    @classmethod
    def spawn(
        cls,
        workdir: str | Path,
        template: str | Path | None = DEFAULT_TEMPLATE,
        samconfig: str | Path | None = DEFAULT_SAMCONFIG,
        config_env: str = "local",
        parameter_overrides: dict[str, str] | None = None,
        region: str = "us-east-1",
        timeout: float = 120.0,
        strict: bool = True,
    ) -> CloudProcess:
        """Start a local cloud in a child process on free ports; returns once it is deployed and ready."""
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "local.cloud", "up", "--workdir", str(workdir), "--moto-port", "0",
                   "--sagemaker-port", "0", "--region", region, "--config-env", config_env]
        command += ["--parent-pid", str(os.getpid())]
        command += [] if strict else ["--no-strict-iam"]
        command += ["--template", str(Path(template).resolve())] if template else ["--no-template"]
        if samconfig:
            command += ["--samconfig", str(Path(samconfig).resolve())]
        for key, value in (parameter_overrides or {}).items():
            command += ["--parameter", f"{key}={value}"]
        log_path = workdir / "cloud.log"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        handle = CloudProcess(proc, workdir, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"local cloud exited with {proc.returncode}:\n{handle.log_tail()}")
            with contextlib.suppress(FileNotFoundError, ValueError):
                state = load_state(workdir)
                if state.pid == proc.pid:
                    handle.state = state
                    return handle
            time.sleep(0.1)
        handle.stop()
        raise TimeoutError(f"local cloud not ready in {timeout:.0f} s:\n{handle.log_tail()}")


class CloudProcess:
    """A local cloud running in a child process (see `LocalCloud.spawn`)."""

    def __init__(self, proc: subprocess.Popen[bytes], workdir: Path, log_path: Path) -> None:
        self.proc, self.workdir, self.log_path = proc, workdir, log_path
        self.state: CloudState | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def env(self) -> dict[str, str]:
        assert self.state is not None
        return self.state.env

    @property
    def outputs(self) -> dict[str, str]:
        assert self.state is not None
        return self.state.outputs

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for a clean shutdown (SIGKILL after `timeout`); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> CloudProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_local_cloud(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return "local.cloud" in cmdline or "guardrail.cli" in cmdline or "guardrail" in cmdline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.cloud", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the local cloud in the foreground")
    up.add_argument("--workdir", default=str(DEFAULT_WORKDIR))
    up.add_argument("--moto-port", type=int, default=5055)
    up.add_argument("--sagemaker-port", type=int, default=5056)
    up.add_argument("--region", default="us-east-1")
    up.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    up.add_argument("--no-template", action="store_true", help="start without deploying anything")
    up.add_argument("--samconfig", default=str(DEFAULT_SAMCONFIG))
    up.add_argument("--config-env", default="local")
    up.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    up.add_argument("--parent-pid", type=int, help="stop when this process is gone (LocalCloud.spawn)")
    up.add_argument("--no-strict-iam", action="store_true", help="no IAM checks; Lambda workers use the admin keys")
    down = sub.add_parser("down", help="stop the local cloud of a workdir")
    down.add_argument("--workdir", default=str(DEFAULT_WORKDIR))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call is noise
    if args.command == "down":
        stopped = LocalCloud.down(args.workdir)
        print("stopped" if stopped else "no local cloud running")
        return 0
    overrides = dict(p.split("=", 1) for p in args.parameter)
    cloud = LocalCloud(
        moto_port=args.moto_port,
        sagemaker_port=args.sagemaker_port,
        region=args.region,
        workdir=args.workdir,
        template=None if args.no_template else args.template,
        samconfig=args.samconfig,
        config_env=args.config_env,
        parameter_overrides=overrides,
        strict=not args.no_strict_iam,
    )
    cloud.foreground(on_ready=lambda c: print(f"local cloud ready: {c.env['AWS_ENDPOINT_URL']} "
                                              f"{c.env['AWS_ENDPOINT_URL_SAGEMAKER']}", flush=True),
                     parent_pid=args.parent_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
