"""Strict IAM for the local cloud: AWS's identity-policy evaluation over moto's IAM/STS state.

The API other parts of the local cloud use (all in the cloud process, next to moto's backends):

- `authorize(principal_arn, action, resources, context=None)`: returns None or raises `AccessDenied`
  with AWS's message. `principal_arn` is an assumed-role ARN (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`)
  or a role ARN. Every resource must be allowed (the first one denied is named in the message).
- `principal_for_access_key(access_key_id)`: the assumed-role ARN of a moto STS key, None for any other
  key (the operator's `testing` credentials are not a principal: they act as the account's admin).
- `credentials_for_role(role_arn, session_name)`: AssumeRole through moto's STS; returns
  `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` (+ `Expiration`, ISO 8601).

Policy semantics are in `local.iam.policy`; how moto's HTTP requests are authorized is in
`local.iam.enforce`.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

from local.iam.policy import Decision, evaluate

__all__ = ["AccessDenied", "authorize", "credentials_for_role", "principal_for_access_key", "role_arn_of"]

PARTITION = "aws"


class AccessDenied(Exception):
    """An IAM denial; `str(exc)` is AWS's message."""

    def __init__(self, message: str, principal: str = "", action: str = "", resource: str = "") -> None:
        super().__init__(message)
        self.message, self.principal, self.action, self.resource = message, principal, action, resource


def _iam(account_id: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id][PARTITION]


def _sts(account_id: str) -> Any:
    from moto.sts.models import sts_backends

    return sts_backends[account_id][PARTITION]


def role_arn_of(principal_arn: str) -> str:
    """`arn:aws:sts::A:assumed-role/R/S` -> `arn:aws:iam::A:role/R` (a role ARN is returned as it is)."""
    parts = principal_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role_name = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role_name}"
    return principal_arn


def _role(principal_arn: str) -> Any:
    parts = principal_arn.split(":", 5)
    if len(parts) != 6:
        return None
    account_id = parts[4]
    if parts[2] == "sts":
        name = parts[5].split("/")[1] if parts[5].startswith("assumed-role/") else None
    elif parts[2] == "iam" and parts[5].startswith("role/"):
        name = parts[5].rsplit("/", 1)[-1]
    else:
        name = None
    if not name:
        return None
    try:
        return _iam(account_id).get_role(name)
    except Exception:
        return None


def _managed_document(policy: Any) -> str | None:
    versions = getattr(policy, "versions", None) or []
    for version in versions:
        if getattr(version, "is_default", False):
            return version.document
    document = getattr(policy, "document", None)
    return document if isinstance(document, str) else None


_AWS_MANAGED: dict[str, str] | None = None


def _aws_managed_document(arn: str) -> str | None:
    """An AWS managed policy that moto did not load (`iam.load_aws_managed_policies` off): from moto's data."""
    global _AWS_MANAGED
    if _AWS_MANAGED is None:
        import json

        from moto.iam.aws_managed_policies import aws_managed_policies_data

        _AWS_MANAGED = {
            name: json.dumps(d["Document"]) for name, d in json.loads(aws_managed_policies_data).items()
        }
    if ":iam::aws:policy/" not in arn:
        return None
    return _AWS_MANAGED.get(arn.rsplit("/", 1)[-1])


def identity_policies(principal_arn: str) -> list[str]:
    """The JSON documents of the role's inline and attached managed policies ([] for an unknown role)."""
    role = _role(principal_arn)
    if role is None:
        return []
    documents = [doc for doc in role.policies.values()]
    for arn, policy in role.managed_policies.items():
        document = _managed_document(policy) or _aws_managed_document(arn)
        if document:
            documents.append(document)
    return documents


def _context(principal_arn: str, context: dict[str, str] | None) -> dict[str, list[str]]:
    parts = principal_arn.split(":", 5)
    full: dict[str, list[str]] = {
        "aws:principalarn": [role_arn_of(principal_arn)],
        "aws:principalaccount": [parts[4] if len(parts) == 6 else ""],
        "aws:principaltype": ["AssumedRole" if ":assumed-role/" in principal_arn else "Role"],
        "aws:securetransport": ["true"],
    }
    for key, value in (context or {}).items():
        full[key.lower()] = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return full


def authorize(principal_arn: str, action: str, resources: list[str], context: dict[str, str] | None = None) -> None:
    """Allow, or raise AccessDenied: the principal's identity policies must allow `action` on every resource."""
    documents = identity_policies(principal_arn)
    ctx = _context(principal_arn, context)
    for resource in resources or ["*"]:
        decision = evaluate(documents, action, resource, ctx)
        if decision is Decision.ALLOW:
            continue
        reason = (
            "with an explicit deny in an identity-based policy"
            if decision is Decision.DENY
            else f"because no identity-based policy allows the {action} action"
        )
        raise AccessDenied(
            f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {reason}",
            principal=principal_arn,
            action=action,
            resource=resource,
        )


# -- principals and credentials -----------------------------------------------------------------

_key_index: dict[str, Any] = {}
_key_lock = threading.Lock()


def _assumed_role(access_key_id: str) -> Any:
    """moto's AssumedRole for an STS access key (any account), or None."""
    found = _key_index.get(access_key_id)
    if found is not None:
        return found
    from moto.sts.models import sts_backends

    with _key_lock:
        for account_id in list(sts_backends.keys()):
            backend = sts_backends[account_id].get(PARTITION) if hasattr(sts_backends[account_id], "get") else None
            if backend is None:
                continue
            for assumed in backend.assumed_roles:
                _key_index.setdefault(assumed.access_key_id, assumed)
    return _key_index.get(access_key_id)


def principal_for_access_key(access_key_id: str) -> str | None:
    """The assumed-role ARN for a moto STS access key; None for any other key (e.g. the operator's)."""
    assumed = _assumed_role(access_key_id) if access_key_id else None
    return assumed.arn if assumed is not None else None


def session_for_access_key(access_key_id: str) -> Any:
    """moto's AssumedRole (session token, expiration) for a key, or None."""
    return _assumed_role(access_key_id) if access_key_id else None


def credentials_for_role(role_arn: str, session_name: str, duration_seconds: int = 3600) -> dict[str, str]:
    """AssumeRole through moto's STS (the role must exist in moto's IAM). Returns the environment
    variables of the session, plus `Expiration` (ISO 8601, UTC)."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or _role(role_arn) is None:
        raise AccessDenied(f"could not assume role {role_arn}: no such role")
    assumed = _sts(parts[4]).assume_role(
        region_name="us-east-1",
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy="",
        duration=duration_seconds,
        external_id="",
    )
    with _key_lock:
        _key_index[assumed.access_key_id] = assumed
    expiration = assumed.expiration
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=datetime.UTC)
    return {
        "AWS_ACCESS_KEY_ID": assumed.access_key_id,
        "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
        "AWS_SESSION_TOKEN": assumed.session_token,
        "Expiration": expiration.isoformat(),
    }
