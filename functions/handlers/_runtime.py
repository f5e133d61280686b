"""What every handler shares: Powertools Logger/Metrics/Tracer and the parse -> step -> dump pattern.

The execution name (`$$.Execution.Name`) is the correlation id. The state machine passes the document either
as the Payload itself with an `execution` key, or wrapped as {"document": {...}, "execution": "..."}: both work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ValidationError

from functions.errors import GuardrailError, InvalidInput

logger = Logger(service="guardrail")
metrics = Metrics(namespace="Guardrail", service="guardrail")


def tracing_enabled() -> bool:
    """Powertools' own rule: trace only inside Lambda (not SAM local) unless POWERTOOLS_TRACE_DISABLED."""
    disabled = os.getenv("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes", "on", "y")
    return bool(os.getenv("LAMBDA_TASK_ROOT")) and not os.getenv("AWS_SAM_LOCAL") and not disabled


# The Tracer loads the X-Ray SDK, which loads botocore (~0.3 s): build it only where traces are sent.
if tracing_enabled():
    from aws_lambda_powertools import Tracer

    tracer: Any = Tracer(service="guardrail")
else:
    tracer = None

In = TypeVar("In", bound=BaseModel)


def unwrap(event: Any) -> dict[str, Any]:
    """The execution document, with `execution` set when the state machine sent it."""
    if not isinstance(event, dict):
        raise InvalidInput(f"expected a JSON object as input, got {type(event).__name__}")
    if isinstance(event.get("document"), dict):
        document = dict(event["document"])
        if "execution" in event:
            document["execution"] = event["execution"]
        return document
    return event


def execution_name(document: dict[str, Any]) -> str | None:
    value = document.get("execution")
    if isinstance(value, dict):
        value = value.get("Name") or value.get("Id")
    if isinstance(value, str) and value.startswith("arn:"):
        value = value.rsplit(":", 1)[-1]
    return value if isinstance(value, str) else None


def describe_validation(exc: ValidationError, limit: int = 6) -> str:
    problems = [f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()[:limit]]
    more = len(exc.errors()) - limit
    return "; ".join(problems) + (f" (+{more} more)" if more > 0 else "")


def step_handler(
    step: str,
    input_model: type[In],
    run: Callable[[In], BaseModel],
    invalid: type[GuardrailError] = InvalidInput,
) -> Callable[[Any, Any], dict[str, Any]]:
    """A Lambda handler: parse the document into `input_model` (bad input -> `invalid`), run the step,
    return the result as JSON-ready data. Guardrail errors propagate: their class name is the error name."""

    def handler(event: Any, context: Any = None) -> dict[str, Any]:
        metrics.add_dimension(name="Step", value=step)
        try:
            document = unwrap(event)
            execution = execution_name(document)
            logger.set_correlation_id(execution)
            logger.append_keys(step=step, execution=execution, request_id=getattr(context, "aws_request_id", None))
            try:
                parsed = input_model.model_validate(document)
            except ValidationError as exc:
                raise invalid(f"{step}: invalid input: {describe_validation(exc)}") from None
            output = run(parsed).model_dump(mode="json")
        except GuardrailError as exc:
            metrics.add_metric(name="StepFailed", unit=MetricUnit.Count, value=1)
            logger.warning("step failed", extra={"error": exc.name, "cause": exc.message})
            raise
        metrics.add_metric(name="StepSucceeded", unit=MetricUnit.Count, value=1)
        logger.info("step done", extra={"result": output})
        return output

    traced = tracer.capture_lambda_handler(handler, capture_response=False) if tracer else handler
    return metrics.log_metrics(traced, raise_on_empty_metrics=False)
