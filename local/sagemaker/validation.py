"""Requests checked against botocore's SageMaker service model, as the service checks them.

botocore validates types, required members and minimums client-side; AWS also rejects values over the
maximum, strings that miss the pattern and unknown enum values server-side, so those are checked here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, OperationNotFoundError, Shape
from botocore.validate import ParamValidator

from local.sagemaker.errors import SerializationException, UnknownOperationException, ValidationException


@cache
def service_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def operation(name: str) -> OperationModel:
    try:
        return service_model().operation_model(name)
    except OperationNotFoundError:
        raise UnknownOperationException(f"Unknown operation: SageMaker.{name}") from None


def parse_request(op_name: str, body: bytes) -> dict[str, Any]:
    """JSON 1.1 body → validated params (timestamps as aware datetimes)."""
    op = operation(op_name)
    try:
        params = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationException(f"Malformed request body: {exc}") from None
    if not isinstance(params, dict):
        raise SerializationException("Request body must be a JSON object")
    shape = op.input_shape
    if shape is None:
        return {}
    params = _to_python(params, shape)
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ValidationException(report.generate_report())
    errors: list[str] = []
    _check_constraints(params, shape, shape.name, errors)
    if errors:
        raise ValidationException(f"{len(errors)} validation error(s) detected: " + "; ".join(errors))
    return params


def _to_python(value: Any, shape: Shape) -> Any:
    """Timestamps arrive as epoch seconds (botocore's JSON serializer); the validator wants datetimes."""
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if kind == "structure" and isinstance(value, dict):
        return {k: _to_python(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_to_python(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _to_python(v, shape.value) for k, v in value.items()}
    return value


@cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:  # a Java-only construct: leave it to the type checks
        return None


def _check_constraints(value: Any, shape: Shape, path: str, errors: list[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have length "
                          f"less than or equal to {meta['max']}")
        if shape.enum and value not in shape.enum:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy "
                          f"enum value set: [{', '.join(shape.enum)}]")
        elif "pattern" in meta and (rx := _pattern(meta["pattern"])) and not rx.fullmatch(value):
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy "
                          f"regular expression pattern: {meta['pattern']}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "max" in meta and value > meta["max"]:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value "
                          f"less than or equal to {meta['max']}")
    elif kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                _check_constraints(member, shape.members[name], f"{path}.{name}", errors)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have length "
                          f"less than or equal to {meta['max']}")
        for i, item in enumerate(value):
            _check_constraints(item, shape.member, f"{path}.{i + 1}", errors)
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Value at '{path}' failed to satisfy constraint: Map must have at most {meta['max']} entries")
        for key, item in value.items():
            _check_constraints(key, shape.key, f"{path}.key", errors)
            _check_constraints(item, shape.value, f"{path}.{key}", errors)


def to_wire(value: Any) -> Any:
    """Python result → JSON 1.1 (timestamps as epoch-second floats, Nones dropped)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value
