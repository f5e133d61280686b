"""Lambda handler for `check_deployment`.

While `deployment.status` is IN_PROGRESS it polls and returns the updated `deployment` (status IN_PROGRESS |
SUCCEEDED | ROLLED_BACK | FAILED; the state machine bounds the polls). Once the document's
`deployment.status` is SUCCEEDED it is the post-deployment watch and returns `watch` (alarm states, `alarm`).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from functions.config import load_settings
from functions.handlers._runtime import metrics, step_handler
from functions.models import CheckDeploymentInput, DeploymentStatus
from functions.steps.check_deployment import check_deployment, watch_deployment

load_settings()


def _run(doc: CheckDeploymentInput) -> BaseModel:
    if doc.deployment.status is DeploymentStatus.SUCCEEDED:
        watch = watch_deployment(doc.deployment, doc.alarms, upload=doc.upload, previous=doc.watch)
        if watch.alarm:
            metrics.add_metric(name="PostDeploymentAlarms", unit=MetricUnit.Count, value=1)
        return watch
    result = check_deployment(doc.deployment, doc.alarms)
    if result.status is DeploymentStatus.ROLLED_BACK:
        metrics.add_metric(name="AutoRollbacks", unit=MetricUnit.Count, value=1)
    return result


handler = step_handler("check_deployment", CheckDeploymentInput, _run)
