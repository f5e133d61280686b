"""SageMaker's error codes, so botocore raises on the emulator what it raises on AWS."""

from __future__ import annotations

from typing import Any


class SageMakerError(Exception):
    """An error answered as `{"__type": code, "message": ...}` with an HTTP status."""

    code = "ValidationException"
    status = 400

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, "Message": self.message, **self.fields}


class ValidationException(SageMakerError):
    code = "ValidationException"


class SerializationException(SageMakerError):
    code = "SerializationException"


class UnknownOperationException(SageMakerError):
    code = "UnknownOperationException"


class ResourceNotFound(SageMakerError):
    code = "ResourceNotFound"


class ResourceInUse(SageMakerError):
    code = "ResourceInUse"


class ResourceLimitExceeded(SageMakerError):
    code = "ResourceLimitExceeded"


class ConflictException(SageMakerError):
    code = "ConflictException"


class AccessDeniedException(SageMakerError):
    """An IAM denial of the caller (JSON 1.1 control plane: 400, `__type` AccessDeniedException)."""

    code = "AccessDeniedException"


class InternalFailure(SageMakerError):
    code = "InternalFailure"
    status = 500


# Runtime (sagemaker-runtime, REST-JSON) errors.


class ValidationError(SageMakerError):
    """InvokeEndpoint's client error: missing endpoint or variant, endpoint not in service."""

    code = "ValidationError"


class ModelError(SageMakerError):
    """The container answered with an error; AWS wraps it in a 424 with the original status."""

    code = "ModelError"
    status = 424

    def __init__(self, original_status: int, original_message: str, log_stream_arn: str) -> None:
        super().__init__(
            f"Received server error ({original_status}) from primary with message "
            f'"{original_message}". See {log_stream_arn} in account 123456789012 for more information.'
            if original_status >= 500
            else f"Received client error ({original_status}) from primary with message "
            f'"{original_message}". See {log_stream_arn} in account 123456789012 for more information.',
            OriginalStatusCode=original_status,
            OriginalMessage=original_message,
            LogStreamArn=log_stream_arn,
        )
        self.original_status = original_status
