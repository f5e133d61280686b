"""No evidence, no promotion (issue 11 §3): did the new fleet serve enough requests to be judged?

SageMaker runs the bakes itself, and with no traffic every `notBreaching` alarm stays OK, so an update that served
nobody finishes "successfully". Guardrail can stop an update in flight only through a rollback alarm; it chooses to
judge the evidence **afterwards**, at the end of the post-deployment watch, and to roll back then (Rollback state,
the same path as an alarm during the watch). Counting after the fact is exact (the whole of the bakes and the
watch, whatever the strategy), whereas an alarm would have to express "fewer than N requests by the end of the
last bake", which no period statistic can; and a fleet with no traffic hurts nobody while it waits.

Counts: `Invocations` Sum per fleet, the `EndpointConfigName` series of the new and the old config, from
UpdateEndpoint (`started_at`) to now. Policy when the new fleet served fewer than `min_requests`:
- `rollback` (default): back to the previous config, ROLLED_BACK with the reason;
- `extend`: watch one more window (PostDeploymentWatchSeconds), up to EVIDENCE_MAX_EXTENSIONS, then roll back;
- `accept`: keep the new model, outcome DEPLOYED_UNVERIFIED.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from functions.adapters import cloudwatch
from functions.config import Settings
from functions.models import DeploymentEvidence, DeploymentState, Upload

NAMESPACE = "AWS/SageMaker"
COUNT_PERIOD = 60  # one-minute sums cover high-resolution data too; their total is the count


def fleet_requests(endpoint: str, variant: str, config: str, start: datetime, end: datetime) -> int:
    """Requests the fleet of `config` served in [start, end) (Invocations Sum, EndpointConfigName series)."""
    start = datetime.fromtimestamp(math.floor(start.timestamp() / COUNT_PERIOD) * COUNT_PERIOD, UTC)
    end = datetime.fromtimestamp(math.ceil(end.timestamp() / COUNT_PERIOD) * COUNT_PERIOD, UTC)
    if end <= start:
        end = start + timedelta(seconds=COUNT_PERIOD)
    values = cloudwatch.metric_stats(
        namespace=NAMESPACE,
        metric="Invocations",
        dimensions={"EndpointName": endpoint, "VariantName": variant, "EndpointConfigName": config},
        stats=["Sum"],
        start=start,
        end=end,
        period=COUNT_PERIOD,
    )["Sum"]
    return round(sum(values))


def deployment_evidence(
    deployment: DeploymentState, upload: Upload | None, settings: Settings, now: datetime
) -> DeploymentEvidence:
    minimum = upload.min_requests if upload and upload.min_requests is not None else settings.min_requests
    policy = (upload.evidence_policy if upload else None) or settings.evidence_policy
    since = deployment.started_at or deployment.succeeded_at or now
    variant = deployment.target_variant or settings.production_variant_name
    new = fleet_requests(deployment.endpoint_name, variant, deployment.target_config, since, now)
    old = None
    if deployment.previous_config:
        old_variant = deployment.previous_variant or variant
        old = fleet_requests(deployment.endpoint_name, old_variant, deployment.previous_config, since, now)
    return DeploymentEvidence(
        new_fleet_requests=new,
        old_fleet_requests=old,
        min_requests=minimum,
        policy=policy,
        since=since,
        until=now,
        sufficient=new >= minimum,
    )


def evidence_action(evidence: DeploymentEvidence, extensions: int, settings: Settings) -> str:
    """OK | ROLLBACK | EXTEND | ACCEPT (pure)."""
    if evidence.sufficient:
        return "OK"
    if evidence.policy == "accept":
        return "ACCEPT"
    if evidence.policy == "extend" and extensions < settings.evidence_max_extensions:
        return "EXTEND"
    return "ROLLBACK"


def describe(evidence: DeploymentEvidence | None) -> str | None:
    """One sentence for alerts, reports and status."""
    if evidence is None:
        return None
    text = f"the new fleet served {evidence.new_fleet_requests} request(s)"
    if evidence.old_fleet_requests is not None:
        text += f", the old fleet {evidence.old_fleet_requests}"
    text += f" (at least {evidence.min_requests} needed)"
    return text
