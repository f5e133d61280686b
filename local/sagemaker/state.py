"""The emulator's shared state: resources, endpoints (their fleets and deployment state) and what the
deployment, experiment and runtime code needs from the backend (`Host`).

It sits below every other module: the backend, the blue/green and rolling deployments, the experiments and
the runtime all import it, and it imports none of them (tests/emulator/test_module_graph.py).
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from local.sagemaker.fleet import Fleet, Variant

log = logging.getLogger(__name__)

ACCOUNT = "123456789012"


class Host(Protocol):
    """What deployments, experiments and the runtime use of the backend (local.sagemaker.backend.Backend)."""

    region: str
    provisioning_delay: float
    alarm_poll_interval: float
    stopping: threading.Event
    lock: threading.RLock
    models: dict[str, Resource]
    configs: dict[str, Resource]
    endpoints: dict[str, Endpoint]
    experiments: dict[str, Any]
    metrics: Any  # local.sagemaker.metrics.MetricsPublisher
    capture: Any  # local.sagemaker.capture.CaptureWriter
    roles: Any  # local.sagemaker.iam.RoleSessions

    def arn(self, kind: str, name: str) -> str: ...
    def endpoint(self, name: str) -> Endpoint: ...
    def model(self, name: str) -> Resource: ...
    def spawn(self, target: Any, *args: Any, name: str) -> None: ...
    def execution_role(self, config_name: str) -> str | None: ...
    def alarms_in_alarm(self, names: list[str], role_arn: str | None = None) -> list[str]: ...
    def build_variant(self, spec: dict[str, Any], config_name: str, role_arn: str | None = None) -> Variant: ...


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Resource:
    name: str
    arn: str
    created: datetime
    spec: dict[str, Any]


@dataclass
class Endpoint:
    name: str
    arn: str
    created: datetime
    config_name: str
    status: str = "Creating"
    modified: datetime = field(default_factory=now)
    blue: Fleet | None = None
    green: Fleet | None = None
    green_share: float = 0.0
    blue_live: int | None = None  # old instances still in service during a rolling update (None: all of them)
    failure_reason: str | None = None
    last_deployment_config: dict[str, Any] | None = None
    pending: dict[str, Any] | None = None  # PendingDeploymentSummary while creating/updating
    experiment: Any = None  # the running InferenceExperiment, if any
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- deployment state changes (called from deployment/experiment threads) ---

    def start_pending(self, config_name: str, variants: list[dict[str, Any]]) -> None:
        t = now()
        self.pending = {
            "EndpointConfigName": config_name,
            "StartTime": t,
            "ProductionVariants": [{
                "VariantName": v["VariantName"],
                "CurrentWeight": 0.0,
                "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
                "CurrentInstanceCount": 0,
                "DesiredInstanceCount": v.get("InitialInstanceCount", 1),
                "InstanceType": v.get("InstanceType"),
                "VariantStatus": [{"Status": "Creating",
                                   "StatusMessage": f"Launching {v.get('InitialInstanceCount', 1)} instance(s).",
                                   "StartTime": t}],
            } for v in variants],
        }

    def set_pending_status(self, status: str, message: str, active_instances: int) -> None:
        if self.pending is None or self.green is None:
            return
        t = now()
        for pv in self.pending["ProductionVariants"]:
            green = self.green.find(pv["VariantName"])
            pv["CurrentInstanceCount"] = min(active_instances, pv["DesiredInstanceCount"])
            pv["CurrentWeight"] = pv["DesiredWeight"] if status == "Baking" else pv["CurrentWeight"]
            if green is not None:
                pv["DeployedImages"] = green.summary()["DeployedImages"]
            pv["VariantStatus"] = [{"Status": status, "StatusMessage": message, "StartTime": t}]

    def set_capacity(self, new: int, old: int) -> None:
        """Rolling update: `new` instances of the green fleet and `old` of the blue one serve, each fleet taking
        requests in proportion to its instances (one variant per fleet: AWS refuses rolling multi-variant)."""
        with self.lock:
            self.blue_live = old
            self.green_share = new / (new + old) if new + old else 0.0

    def roll_back(self, reason: str) -> None:
        with self.lock:
            self.green_share = 0.0  # all traffic back to blue before green goes away
            self.blue_live = None
            self.green = None
            self.pending = None
            self.failure_reason = reason
            self.status = "InService"
            self.modified = now()
        log.info("endpoint %s rolled back: %s", self.name, reason)

    def finish_update(self, green: Fleet) -> None:
        with self.lock:
            self.blue = green
            self.config_name = green.config_name
            self.green = None
            self.green_share = 0.0
            self.blue_live = None
            self.pending = None
            self.status = "InService"
            self.modified = now()

    # --- routing ---

    def serving_fleet(self) -> Fleet:
        green, share = self.green, self.green_share
        if green is not None and share > 0 and (share >= 1.0 or random.random() < share):
            return green
        assert self.blue is not None
        return self.blue

    def find_variant(self, name: str) -> Variant | None:
        for fleet in (self.green if self.green_share > 0 else None, self.blue):
            if fleet is not None and (v := fleet.find(name)) is not None:
                return v
        return None




def page(items: list[dict[str, Any]], p: dict[str, Any], key: str, name_key: str) -> dict[str, Any]:
    sort_by = p.get("SortBy", "CreationTime")
    field_ = {"Name": name_key, "CreationTime": "CreationTime", "Status": "EndpointStatus"}.get(sort_by, "CreationTime")
    items.sort(key=lambda i: i.get(field_) or "", reverse=p.get("SortOrder", "Descending") == "Descending")
    start = int(p.get("NextToken") or 0)
    size = p.get("MaxResults", 100)
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out
