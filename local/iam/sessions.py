"""Role sessions for the local cloud's services acting as a role (Lambda functions' execution roles):
one moto-STS session per (role, session name), assumed again before it expires."""

from __future__ import annotations

import datetime
import threading

from local.iam import AccessDenied, credentials_for_role


class RoleSessions:
    """`get(role_arn, session_name)` -> the session's variables; a new AssumeRole once less than
    `refresh_margin` seconds are left (botocore itself refreshes at 15 min, mandatory at 10 min)."""

    def __init__(self, duration_seconds: int = 3600, refresh_margin: float = 20 * 60) -> None:
        self.duration_seconds, self.refresh_margin = duration_seconds, refresh_margin
        self._sessions: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()
        self.assumed = 0  # how many AssumeRole calls (for tests and the bench)

    def get(self, role_arn: str, session_name: str) -> dict[str, str]:
        if not role_arn:
            raise AccessDenied(f"no execution role to assume for {session_name}")
        key = (role_arn, session_name)
        now = datetime.datetime.now(datetime.UTC)
        with self._lock:
            session = self._sessions.get(key)
            if session is None or (datetime.datetime.fromisoformat(session["Expiration"]) - now).total_seconds() < self.refresh_margin:
                session = credentials_for_role(role_arn, session_name, self.duration_seconds)
                self._sessions[key] = session
                self.assumed += 1
            return session

    def for_function(self, config: object) -> dict[str, str]:
        """A LambdaRuntime credentials provider: the function's role, session name = function name."""
        return self.get(getattr(config, "role", ""), getattr(config, "name", "lambda"))
