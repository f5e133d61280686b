"""housekeeping: after a deployment settles, delete what costs money and serves nobody (issue 14 §6).

- **Alarms** of retired configs: every deployment puts 4-6 alarms named `guardrail-<endpoint>-<config>-<what>`
  (functions.steps.names, ensure_alarms) and CloudWatch bills each alarm per month. Only the alarms of the live
  configs stay: the serving one and this execution's own (after a PROMOTE the endpoint serves the experiment's
  config, and the promoted model's alarms carry its own config's name).
- **Endpoint configs and models**: Guardrail's beyond `KEEP_VERSIONS` (default 2) kept for rollback besides the
  serving config. Never deleted: the serving config (of any endpoint), the previous config (the rollback target)
  and the models they use, this execution's own, and anything created after this execution's own model (another
  execution's, e.g. one that took over a lock). AWS does not refuse to delete an endpoint config or a model an
  endpoint uses (API_DeleteEndpointConfig: "You must not delete an EndpointConfig in use by an endpoint that is
  live"; API_DeleteModel: "deletes only the model entry"), so these checks are ours.
- **Only Guardrail's**: a model is Guardrail's when its artifact is the stack's content-addressed copy,
  `s3://<ModelBucket>/deployed/...` (only CreateModel writes there); a config when its name ends in `-cfg` and
  every model it names is Guardrail's. Alarms: the `guardrail-<endpoint>-` prefix and a known suffix.
- Runs only while this execution still holds the endpoint's lock and the endpoint is InService with no pending
  deployment; otherwise it deletes nothing and says why. A failed deletion is recorded and the rest goes on; the
  state machine catches any error of this step, so housekeeping never changes a deployment's outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.adapters import cloudwatch, dynamodb, sagemaker
from functions.config import Settings
from functions.errors import GuardrailError
from functions.models import HousekeepingInput, HousekeepingOutput

# What follows `guardrail-<endpoint>-<config>-` in the alarm names ensure_alarms puts (longest first: "watch-...").
ALARM_SUFFIXES = ("-watch-5xx-rate", "-watch-model-latency", "-5xx-rate", "-model-latency", "-4xx-rate", "-verdict")
CONFIG_SUFFIX = "-cfg"  # functions.steps.names: every config Guardrail creates


def alarm_config(name: str, prefix: str) -> str | None:
    """The config an alarm watches, from its name; None for an alarm that is not one of ensure_alarms'."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    for suffix in ALARM_SUFFIXES:
        if rest.endswith(suffix) and len(rest) > len(suffix):
            return rest[: -len(suffix)]
    return None


def _models_of(config: dict[str, Any] | None) -> set[str]:
    variants = (config or {}).get("ProductionVariants", []) + (config or {}).get("ShadowProductionVariants", [])
    return {v["ModelName"] for v in variants if v.get("ModelName")}


def _artifacts(model: dict[str, Any]) -> list[str]:
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    return [c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")]


def _lock_lost(doc: HousekeepingInput, settings: Settings) -> str | None:
    if not (doc.lock and settings.table_name):
        return "no lock recorded for this execution"
    holder = dynamodb.get(settings.table_name, doc.lock.lock_key) or {}
    if holder.get("execution_name") != doc.lock.owner:
        return f"the lock is no longer held by this execution (holder: {holder.get('execution_name', 'none')})"
    return None


def _in_use(endpoint: str, serving: str) -> set[str]:
    """Configs any endpoint of the account serves or is moving to (never deleted, whoever made the endpoint)."""
    used = {serving}
    for item in sagemaker.list_endpoints():
        if item["EndpointName"] == endpoint:
            continue
        described = sagemaker.describe_endpoint(item["EndpointName"]) or {}
        used.add(described.get("EndpointConfigName", ""))
        used.add((described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName", ""))
    return used - {""}


def housekeeping(doc: HousekeepingInput, settings: Settings) -> HousekeepingOutput:
    keep = settings.keep_versions
    endpoint = doc.upload.endpoint_name
    out = HousekeepingOutput(keep_versions=keep)
    lost = _lock_lost(doc, settings)
    if lost:
        return out.model_copy(update={"skipped": lost})
    described = sagemaker.describe_endpoint(endpoint)
    if described is None:
        return out.model_copy(update={"skipped": f"endpoint {endpoint} does not exist"})
    status = described.get("EndpointStatus")
    if status != "InService" or described.get("PendingDeploymentSummary"):
        return out.model_copy(update={"skipped": f"endpoint {endpoint} is {status}: not settled"})
    serving = described["EndpointConfigName"]
    own_config, own_model = doc.upload.names.endpoint_config, doc.upload.names.model
    previous = (doc.deployment.previous_config if doc.deployment else None) or (
        doc.endpoint_config.live_config if doc.endpoint_config else None
    )

    # Anything made at or after this execution's own model may be another execution's: keep it.
    own = sagemaker.describe_model(own_model)
    cutoff: datetime | None = own.get("CreationTime") if own else None

    def recent(item: dict[str, Any]) -> bool:
        return cutoff is None or item["CreationTime"] >= cutoff

    deployed_prefix = f"s3://{settings.model_bucket}/deployed/"
    guardrail_models: dict[str, datetime] = {}
    for item in sagemaker.list_models():
        if recent(item) or item["ModelName"] == own_model:
            continue
        model = sagemaker.describe_model(item["ModelName"]) or {}
        urls = _artifacts(model)
        if settings.model_bucket and urls and all(u.startswith(deployed_prefix) for u in urls):
            guardrail_models[item["ModelName"]] = item["CreationTime"]

    protected = _in_use(endpoint, serving) | {c for c in (previous, own_config) if c}
    uses: dict[str, set[str]] = {}  # config -> models, for every config that stays or may go
    guardrail_configs: dict[str, datetime] = {}
    for item in sagemaker.list_endpoint_configs():
        name = item["EndpointConfigName"]
        candidate = name.endswith(CONFIG_SUFFIX) and not recent(item)
        if not (candidate or name in protected):
            continue
        models = uses[name] = _models_of(sagemaker.describe_endpoint_config(name))
        if candidate and models and models <= guardrail_models.keys():
            guardrail_configs[name] = item["CreationTime"]
    for name in protected - uses.keys():  # e.g. the serving config was deleted by someone: its models stay
        uses[name] = _models_of(sagemaker.describe_endpoint_config(name))

    # Kept for rollback: the previous config first, then the newest others, `keep` in all besides the serving one.
    newest = sorted((c for c in guardrail_configs if c != serving), key=guardrail_configs.__getitem__, reverse=True)
    ranked = [c for c in newest if c == previous] + [c for c in newest if c != previous]
    kept = set(ranked[:keep]) | protected
    retired_configs = [c for c in newest if c not in kept]
    needed_models = {own_model}.union(*(uses[c] for c in uses if c not in retired_configs))
    retired_models = sorted(m for m in guardrail_models if m not in needed_models)

    prefix = f"guardrail-{endpoint}-"
    live = {serving, own_config}
    retired_alarms = sorted(
        a["AlarmName"]
        for a in cloudwatch.alarms_with_prefix(prefix)
        if (config := alarm_config(a["AlarmName"], prefix)) is not None
        and config not in live
        and not (cutoff and a.get("AlarmConfigurationUpdatedTimestamp") and a["AlarmConfigurationUpdatedTimestamp"] >= cutoff)
    )

    errors: list[str] = []
    deleted_alarms: list[str] = []
    if retired_alarms:
        try:
            cloudwatch.delete_alarms(retired_alarms)
            deleted_alarms = retired_alarms
        except GuardrailError as exc:
            errors.append(f"DeleteAlarms: {exc.name}: {exc.message}")
    deleted_configs: list[str] = []
    for name in retired_configs:
        try:
            sagemaker.delete_endpoint_config(name)
            deleted_configs.append(name)
        except GuardrailError as exc:
            errors.append(f"DeleteEndpointConfig {name}: {exc.name}: {exc.message}")
    # A model stays while a config that failed to go still names it.
    still_named = set().union(*(uses[c] for c in retired_configs if c not in deleted_configs))
    deleted_models: list[str] = []
    for name in retired_models:
        if name in still_named:
            continue
        try:
            sagemaker.delete_model(name)
            deleted_models.append(name)
        except GuardrailError as exc:
            errors.append(f"DeleteModel {name}: {exc.name}: {exc.message}")
    return out.model_copy(
        update={
            "serving_config": serving,
            "kept_configs": sorted((set(guardrail_configs) | protected) - set(deleted_configs)),
            "deleted_alarms": deleted_alarms,
            "deleted_configs": deleted_configs,
            "deleted_models": deleted_models,
            "errors": errors,
        }
    )

