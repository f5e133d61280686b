"""Errors raised by the Lambda steps. Each class name IS the Step Functions error name.

Lambda reports an unhandled exception as `errorType = type(exc).__name__`; Step Functions matches Retry/Catch
`ErrorEquals` against that name, so renaming a class here breaks the state machine (see docs/contracts.md).

Botocore `ClientError`s are translated to these classes in ONE place: `translate()` / `aws_errors()`, used by
the adapters only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # botocore is imported lazily: keeps handler cold import cheap
    from botocore.exceptions import ClientError


class GuardrailError(Exception):
    """Base of every error a step raises on purpose; `str(exc)` is the human-readable cause."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def name(self) -> str:
        return type(self).__name__


# --- error names the state machine knows (docs/contracts.md "Error names") -------------------------------
class InvalidTrigger(GuardrailError):
    """Malformed event, key outside the prefix, bad or too-long names, unknown strategy, bad deployment.json."""


class ArtifactNotFound(GuardrailError):
    """model.tar.gz or evaluation.json is missing."""


class InvalidArtifact(GuardrailError):
    """An artifact exists but is corrupt or cannot be parsed (evaluation.json, deployment.json)."""


class EndpointLocked(GuardrailError):
    """Another execution holds the per-endpoint lock (retried with backoff by the state machine)."""


class ModelRejected(GuardrailError):
    """The quality gate (or pre-flight) said no; `reasons` lists every failed check."""

    def __init__(self, reasons: list[str], stage: str = "the quality gate") -> None:
        super().__init__(f"Model rejected by {stage}: " + "; ".join(reasons))
        self.reasons = reasons
        self.stage = stage


class EndpointNotReady(GuardrailError):
    """The endpoint is busy (Creating/Updating) and the operation must wait (retried)."""


class Throttled(GuardrailError):
    """AWS throttled the call (retried with backoff)."""


class AlarmNotFound(GuardrailError):
    """A rollback alarm does not exist after put_metric_alarm (describe_alarms ignores unknown names)."""


class DeploymentFailed(GuardrailError):
    """The endpoint went Failed / UpdateRollbackFailed, or a deployment cannot proceed."""


class AwsServiceError(GuardrailError):
    """Any other AWS error, with its code and message."""

    def __init__(self, code: str, message: str, operation: str = "") -> None:
        where = f" in {operation}" if operation else ""
        super().__init__(f"{code}{where}: {message}")
        self.code = code
        self.aws_message = message
        self.operation = operation


class InvalidInput(GuardrailError):
    """The execution document lacks what a step needs (a state machine wiring error, not user input)."""


# --- conditions the adapters handle themselves (they reach the state machine only by mistake) -------------
class ResourceNotFound(AwsServiceError):
    """The named resource does not exist (adapters turn this into `None` where absence is normal)."""


class ResourceAlreadyExists(AwsServiceError):
    """Create of something that exists (adapters turn this into 'existed': creates are idempotent)."""


class ResourceInUse(AwsServiceError):
    """The resource is busy with another operation (e.g. an endpoint being updated)."""


class ConditionFailed(AwsServiceError):
    """A DynamoDB condition expression was false."""


_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "TooManyRequests",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
}
_NOT_FOUND = {
    "ResourceNotFound",
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
    "NotFound",
    "404",
    "NotFoundException",
}
# SageMaker reports most of these conditions as ValidationException with a message only.
_NOT_FOUND_PHRASES = ("could not find", "does not exist", "not found")
_EXISTS_PHRASES = ("already existing", "already exists", "cannot create already")


def translate(err: ClientError, operation: str = "") -> GuardrailError:
    """Map a botocore ClientError to the Guardrail error it means."""
    info = err.response.get("Error", {})
    code = str(info.get("Code", "Unknown"))
    message = str(info.get("Message", "")) or str(err)
    operation = operation or getattr(err, "operation_name", "") or ""
    lowered = message.lower()
    if code in _THROTTLING:
        return Throttled(f"{code} in {operation}: {message}" if operation else f"{code}: {message}")
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(code, message, operation)
    if code in _NOT_FOUND:
        return ResourceNotFound(code, message, operation)
    if code in ("ResourceInUse", "ResourceInUseException", "ConflictException"):
        if any(p in lowered for p in _EXISTS_PHRASES):
            return ResourceAlreadyExists(code, message, operation)
        return ResourceInUse(code, message, operation)
    if code in ("ValidationException", "ValidationError"):
        if any(p in lowered for p in _EXISTS_PHRASES):
            return ResourceAlreadyExists(code, message, operation)
        if any(p in lowered for p in _NOT_FOUND_PHRASES):
            return ResourceNotFound(code, message, operation)
        if "in-progress" in lowered or "in progress" in lowered:  # "Cannot update in-progress endpoint"
            return ResourceInUse(code, message, operation)
    if code == "ResourceLimitExceeded" and "in progress" in lowered:
        return ResourceInUse(code, message, operation)
    return AwsServiceError(code, message, operation)


@contextmanager
def aws_errors(operation: str = "") -> Iterator[None]:
    """Run AWS calls; re-raise any ClientError as the Guardrail error it means."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as err:
        raise translate(err, operation) from err
