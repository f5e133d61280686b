"""Lazily created, process-wide boto3 clients (one per service).

Plain boto3 with no endpoint URLs: locally, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` route the calls
to the local cloud. boto3 is imported on first use, which keeps handler imports cheap.
"""

from __future__ import annotations

from typing import Any

_clients: dict[tuple[str, int], Any] = {}


def client(service: str, max_attempts: int = 4) -> Any:
    found = _clients.get((service, max_attempts))
    if found is None:
        import boto3
        from botocore.config import Config

        # "standard" retry mode backs off on throttling and transient errors before we translate them.
        config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts}, connect_timeout=5, read_timeout=30
        )
        found = _clients[(service, max_attempts)] = boto3.client(service, config=config)
    return found


def reset_clients() -> None:
    """Forget cached clients (tests create them inside a moto mock or wrap them in a Stubber)."""
    _clients.clear()
