"""How clients reach the local cloud: the environment variables, boto3 clients, `.guardrail/cloud.json`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from pydantic import BaseModel

DEFAULT_WORKDIR = Path(".guardrail")
STATE_FILE = "cloud.json"
ACCOUNT_ID = "123456789012"  # moto's default account
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Services the SageMaker emulator answers; everything else goes to moto.
_SERVICE_ENDPOINT_VARIABLE = {
    "sagemaker": "AWS_ENDPOINT_URL_SAGEMAKER",
    "sagemaker-runtime": "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
}


def cloud_env(moto_url: str, sagemaker_url: str, region: str = "us-east-1") -> dict[str, str]:
    """The variables an SDK (or a Lambda function) needs to use the local cloud instead of AWS."""
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_SAGEMAKER": sagemaker_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **FAKE_CREDENTIALS,
    }


class CloudState(BaseModel):
    """The contents of `.guardrail/cloud.json`, written by a running local cloud."""

    pid: int
    region: str
    moto_port: int
    sagemaker_port: int
    moto_url: str
    sagemaker_url: str
    stack_name: str | None = None
    outputs: dict[str, str] = {}
    resources: dict[str, str] = {}
    state_machines: dict[str, str] = {}  # logical id -> ARN
    alert_queue_url: str | None = None
    log_dir: str

    @property
    def env(self) -> dict[str, str]:
        return cloud_env(self.moto_url, self.sagemaker_url, self.region)

    def write(self, workdir: Path) -> Path:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)  # readers never see half a file
        return path


def load_state(workdir: Path | str = DEFAULT_WORKDIR) -> CloudState:
    path = Path(workdir) / STATE_FILE
    if not path.exists():
        raise FileNotFoundError(f"no local cloud state at {path}: start one with `guardrail up`")
    return CloudState.model_validate_json(path.read_text())


def load_env(workdir: Path | str = DEFAULT_WORKDIR) -> dict[str, str]:
    return load_state(workdir).env


def endpoint_for(service: str, env: dict[str, str]) -> str:
    variable = _SERVICE_ENDPOINT_VARIABLE.get(service, "AWS_ENDPOINT_URL")
    return env.get(variable) or env["AWS_ENDPOINT_URL"]


_sessions: dict[tuple[str, ...], boto3.session.Session] = {}
_sessions_lock = threading.Lock()


def client(service: str, env: dict[str, str] | None = None, **config: Any) -> Any:
    """A boto3 client for `service` in the local cloud described by `env` (default: `.guardrail/cloud.json`).

    A private session (one per credentials+region, so service models load once), never boto3's default
    one: the Lambda runtime's Invoke hook lives there and must not apply to clients.
    """
    env = env if env is not None else load_env()
    key = (*tuple(env.get(k, "testing") for k in FAKE_CREDENTIALS), env.get("AWS_DEFAULT_REGION", "us-east-1"))
    retries = config.pop("retries", {"max_attempts": 2, "mode": "standard"})
    with _sessions_lock:  # sessions are not thread-safe; the clients they make are
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = boto3.session.Session(
                aws_access_key_id=key[0], aws_secret_access_key=key[1], aws_session_token=key[2], region_name=key[3]
            )
        return session.client(service, endpoint_url=endpoint_for(service, env), config=Config(retries=retries, **config))

