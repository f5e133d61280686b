"""Lambda handler for `notify`: one SNS message for `outcome`. Runs on Catch paths with partial documents, so
its input model accepts anything; only a failed publish (or a missing TOPIC_ARN) makes it fail."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from functions.config import load_settings
from functions.handlers._runtime import metrics, step_handler
from functions.models import NotifyInput, NotifyOutput
from functions.steps.notify import notify

load_settings(required=("topic_arn",))


def _run(doc: NotifyInput) -> NotifyOutput:
    result = notify(doc, load_settings())
    metrics.add_dimension(name="Outcome", value=result.outcome)  # one count per outcome, for dashboards
    metrics.add_metric(name="Outcomes", unit=MetricUnit.Count, value=1)
    return result


handler = step_handler("notify", NotifyInput, _run)
