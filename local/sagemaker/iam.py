"""IAM in the emulator: who may call which operation, and the roles SageMaker itself acts with.

- Incoming calls: the caller is the principal of the SigV4 `Authorization` header's access key
  (`local.iam.principal_for_access_key`; None, e.g. the `testing` key, is the account's admin and is not checked).
  Each operation needs the IAM action of the same name on the resource ARNs that AWS's Service Authorization
  Reference lists for it (read from parliament's copy, `iam_definition.json`), plus the dependent
  `iam:PassRole` (with `iam:PassedToService` = sagemaker.amazonaws.com) on CreateModel's `ExecutionRoleArn` and
  CreateInferenceExperiment's `RoleArn`. A denial is SageMaker's 400 `AccessDeniedException`.
- Roles the emulator acts with (what SageMaker does on the customer's behalf): the model's `ExecutionRoleArn`
  reads model.tar.gz and writes data capture; it reads the auto-rollback alarms; an inference experiment's
  `RoleArn` manages the endpoint. Their credentials come from moto's STS (`local.iam.credentials_for_role`).

Both are active only when IAM is enforced in this process (`local.iam.enforce.installed()`, as the local cloud
does): without it nothing is evaluated and the emulator uses its own credentials, as before.
"""

from __future__ import annotations

import json
import os
import threading
import time
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

SERVICE_PRINCIPAL = "sagemaker.amazonaws.com"


def active() -> bool:
    try:
        from local.iam import enforce
    except ImportError:
        return False
    return bool(enforce.installed())


class Denied(Exception):
    """A role SageMaker acts with is not allowed to do something (message: IAM's)."""


@cache
def _resource_types() -> dict[str, list[str]]:
    """SageMaker operation → required resource types (`endpoint`, `model`...; [] = "*"), per parliament's copy of
    the Service Authorization Reference."""
    import parliament

    with open(os.path.join(os.path.dirname(parliament.__file__), "iam_definition.json")) as f:
        service = next(s for s in json.load(f) if s["prefix"] == "sagemaker")
    out: dict[str, list[str]] = {}
    for priv in service["privileges"]:
        out[priv["privilege"]] = [r["resource_type"].rstrip("*") for r in priv["resource_types"]
                                  if r["resource_type"].endswith("*")]
    return out


# the request member that names each resource type, per operation (the ARN is built from it)
_NAME_OF = {"model": "ModelName", "endpoint-config": "EndpointConfigName", "endpoint": "EndpointName",
            "inference-experiment": "Name"}


def checks(op: str, params: dict[str, Any], arn: Any) -> list[tuple[str, list[str], dict[str, str] | None]]:
    """(action, resource ARNs, condition context) that `op` with `params` needs; `arn(kind, name)` builds ARNs."""
    types = _resource_types().get(op)
    if types is None:
        return [(f"sagemaker:{op}", ["*"], None)]
    resources = [arn(kind, params[_NAME_OF[kind]]) for kind in types if params.get(_NAME_OF.get(kind, ""))]
    out: list[tuple[str, list[str], dict[str, str] | None]] = [(f"sagemaker:{op}", resources or ["*"], None)]
    role = params.get("ExecutionRoleArn") if op == "CreateModel" else (
        params.get("RoleArn") if op == "CreateInferenceExperiment" else None)
    if role:
        out.append(("iam:PassRole", [role], {"iam:PassedToService": SERVICE_PRINCIPAL}))
    return out


def access_key(headers: Any) -> str | None:
    auth = headers.get("Authorization") or ""
    if "Credential=" not in auth:
        return None
    return auth.partition("Credential=")[2].partition("/")[0] or None


class Rejected(Exception):
    """The request's credentials are not valid (unknown STS key, wrong session token, expired session)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def caller(headers: Any) -> str | None:
    """The assumed-role ARN that signed the request; None for the admin (non-STS) keys or when IAM is off.
    Credentials are judged as moto's server judges them (`local.iam.enforce.principal_of_request`)."""
    if not access_key(headers) or not active():
        return None
    from local.iam.enforce import RequestRejected, principal_of_request

    try:
        return principal_of_request(headers, {})[0]
    except RequestRejected as exc:
        raise Rejected(exc.code, exc.message, exc.status) from None


def authorize(principal: str, action: str, resources: list[str], context: dict[str, str] | None = None) -> None:
    """Raise Denied with IAM's message unless `principal` may do `action` on every resource."""
    from local.iam import AccessDenied
    from local.iam import authorize as iam_authorize

    try:
        iam_authorize(principal, action, resources, context)
    except AccessDenied as exc:
        raise Denied(str(exc)) from None


class RoleSessions:
    """boto3 clients with a role's credentials (moto STS AssumeRole), cached until shortly before they expire."""

    def __init__(self, endpoint_url: str | None, region: str) -> None:
        self._endpoint_url, self._region = endpoint_url, region
        self._cache: dict[tuple[str, str], tuple[float, Any, str]] = {}
        self._lock = threading.Lock()
        self._cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"})

    def client(self, role_arn: str, service: str) -> tuple[Any, str]:
        """(client, assumed-role ARN). Raises Denied when the role cannot be assumed."""
        from local.iam import AccessDenied, credentials_for_role, principal_for_access_key

        with self._lock:
            hit = self._cache.get((role_arn, service))
            if hit and hit[0] > time.time():
                return hit[1], hit[2]
        try:
            creds = credentials_for_role(role_arn, "SageMaker")
        except AccessDenied as exc:
            raise Denied(f"SageMaker could not assume role {role_arn}: {exc}") from None
        client = boto3.session.Session(region_name=self._region).client(
            service, endpoint_url=self._endpoint_url, config=self._cfg,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=creds["AWS_SESSION_TOKEN"])
        principal = principal_for_access_key(creds["AWS_ACCESS_KEY_ID"]) or role_arn
        with self._lock:
            self._cache[(role_arn, service)] = (time.time() + 1800, client, principal)
        return client, principal
