"""Inference experiments (ShadowMode): a shadow variant beside production, then Promote/Remove/Retain.

Statuses follow AWS: Creating → Created → Starting → Running → Stopping → Completed | Cancelled. Without a
Schedule the experiment starts at once and ends after 7 days; at Schedule.EndTime it completes, the shadow
is removed and the endpoint is as before.
"""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local.sagemaker import iam as sm_iam
from local.sagemaker.container import ArtifactError
from local.sagemaker.errors import ConflictException, ResourceInUse, ResourceNotFound, ValidationException
from local.sagemaker.fleet import Fleet, Variant
from local.sagemaker.state import Endpoint, Host, Resource, now, page

DEFAULT_DURATION = timedelta(days=7)
# "The maximum duration that you can set for an inference experiment is 30 days."
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceExperimentSchedule.html
MAX_DURATION = timedelta(days=30)
ACTIVE = ("Creating", "Created", "Updating", "Starting", "Running", "Stopping")


@dataclass
class Experiment:
    name: str
    arn: str
    spec: dict[str, Any]
    endpoint: str
    created: datetime
    start_time: datetime
    end_time: datetime
    status: str = "Creating"
    status_reason: str | None = None
    modified: datetime = field(default_factory=now)
    completed: datetime | None = None
    shadow: Variant | None = None
    sampling: float = 0.0
    destination: str | None = None
    variant_status: dict[str, str] = field(default_factory=dict)
    wake: threading.Event = field(default_factory=threading.Event)
    start_requested: bool = False
    stop_request: dict[str, Any] | None = None

    @property
    def shadow_config(self) -> dict[str, Any]:
        return self.spec["ShadowModeConfig"]["ShadowModelVariants"][0]

    def set(self, status: str, reason: str | None = None) -> None:
        self.status, self.modified = status, now()
        if reason is not None:
            self.status_reason = reason


def operations(backend: Host) -> dict[str, Any]:
    ops = ExperimentOps(backend)
    return {
        "CreateInferenceExperiment": ops.create, "DescribeInferenceExperiment": ops.describe,
        "StartInferenceExperiment": ops.start, "StopInferenceExperiment": ops.stop,
        "ListInferenceExperiments": ops.list, "DeleteInferenceExperiment": ops.delete,
    }


class ExperimentOps:
    def __init__(self, backend: Host) -> None:
        self.b = backend

    def _get(self, name: str) -> Experiment:
        exp = self.b.experiments.get(name)
        if exp is None:
            raise ResourceNotFound(f"Inference experiment {name} does not exist.")
        return exp

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["Name"]
        ep = self.b.endpoint(p["EndpointName"])
        mode = p["ShadowModeConfig"]
        source = mode["SourceModelVariantName"]
        shadow_name = mode["ShadowModelVariants"][0]["ShadowModelVariantName"]
        variants = {v["VariantName"]: v for v in p["ModelVariants"]}
        if set(variants) != {source, shadow_name} or source == shadow_name:
            raise ValidationException(
                f"ModelVariants must name the production variant {source} and the shadow variant {shadow_name}.")
        for v in p["ModelVariants"]:
            self.b.model(v["ModelName"])
        with self.b.lock:
            if name in self.b.experiments:
                raise ResourceInUse(f"Inference experiment {name} already exists.")
            if any(e.endpoint == ep.name and e.status in ACTIVE for e in self.b.experiments.values()):
                raise ResourceInUse(f"Endpoint {ep.name} already has an inference experiment in progress.")
            with ep.lock:
                if ep.status != "InService" or ep.blue is None:
                    raise ValidationException(f"Endpoint {ep.name} must be InService (it is {ep.status}).")
                prod = ep.blue.find(source)
                if prod is None:
                    raise ValidationException(f"Variant {source} is not a production variant of endpoint {ep.name}.")
                if prod.model_name != variants[source]["ModelName"]:
                    raise ValidationException(
                        f"Production variant {source} serves model {prod.model_name}, not {variants[source]['ModelName']}.")
                if ep.blue.shadow is not None:
                    raise ValidationException(f"Endpoint {ep.name} already has a shadow variant.")
            schedule = p.get("Schedule") or {}
            start = schedule.get("StartTime") or now()
            end = schedule.get("EndTime") or start + DEFAULT_DURATION
            if end <= start:
                raise ValidationException("Schedule.EndTime must be after Schedule.StartTime.")
            if end - start > MAX_DURATION:  # InferenceExperimentSchedule (API reference); the text is ours
                raise ValidationException(
                    f"The schedule lasts {end - start}: the maximum duration that you can set for an inference "
                    "experiment is 30 days.")
            exp = Experiment(
                name=name, arn=self.b.arn("inference-experiment", name), spec=copy.deepcopy(p),
                endpoint=ep.name, created=now(), start_time=start, end_time=end,
                destination=(p.get("DataStorageConfig") or {}).get("Destination"),
                variant_status={source: "InService", shadow_name: "Creating"},
            )
            self.b.experiments[name] = exp
        self.b.spawn(self._run, exp, name=f"experiment-{name}")
        return {"InferenceExperimentArn": exp.arn}

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        exp = self._get(p["Name"])
        ep = self.b.endpoints.get(exp.endpoint)
        meta: dict[str, Any] = {"EndpointName": exp.endpoint}
        if ep is not None:
            meta.update(EndpointConfigName=ep.config_name, EndpointStatus=ep.status, FailureReason=ep.failure_reason)
        spec = exp.spec
        return {
            "Arn": exp.arn, "Name": exp.name, "Type": spec["Type"],
            "Schedule": {"StartTime": exp.start_time, "EndTime": exp.end_time},
            "Status": exp.status, "StatusReason": exp.status_reason, "Description": spec.get("Description"),
            "CreationTime": exp.created, "CompletionTime": exp.completed, "LastModifiedTime": exp.modified,
            "RoleArn": spec.get("RoleArn"), "EndpointMetadata": meta,
            "ModelVariants": [{**v, "Status": exp.variant_status.get(v["VariantName"], "InService")}
                              for v in spec["ModelVariants"]],
            "DataStorageConfig": spec.get("DataStorageConfig"), "ShadowModeConfig": spec["ShadowModeConfig"],
            "KmsKey": spec.get("KmsKey"),
        }

    def list(self, p: dict[str, Any]) -> dict[str, Any]:
        items = [{"Name": e.name, "Type": e.spec["Type"], "Status": e.status, "StatusReason": e.status_reason,
                  "Schedule": {"StartTime": e.start_time, "EndTime": e.end_time},
                  "Description": e.spec.get("Description"), "CreationTime": e.created,
                  "CompletionTime": e.completed, "LastModifiedTime": e.modified, "RoleArn": e.spec.get("RoleArn")}
                 for e in self.b.experiments.values()
                 if p.get("NameContains", "") in e.name and p.get("StatusEquals", e.status) == e.status]
        return page(items, p, "InferenceExperiments", "Name")

    def start(self, p: dict[str, Any]) -> dict[str, Any]:
        exp = self._get(p["Name"])
        if exp.status != "Created":
            raise ConflictException(f"Inference experiment {exp.name} is {exp.status}; only a Created experiment can be started.")
        exp.start_requested = True
        exp.wake.set()
        return {"InferenceExperimentArn": exp.arn}

    def stop(self, p: dict[str, Any]) -> dict[str, Any]:
        exp = self._get(p["Name"])
        if exp.status not in ("Created", "Starting", "Running"):
            raise ConflictException(f"Inference experiment {exp.name} is {exp.status}; it cannot be stopped.")
        source = exp.spec["ShadowModeConfig"]["SourceModelVariantName"]
        shadow = exp.shadow_config["ShadowModelVariantName"]
        actions = p["ModelVariantActions"]
        unknown = set(actions) - {source, shadow}
        if unknown:
            raise ValidationException(f"ModelVariantActions names variants not in the experiment: {sorted(unknown)}.")
        if actions.get(shadow) == "Promote" and actions.get(source, "Remove") != "Remove":
            raise ValidationException("Promoting the shadow variant replaces the production variant: "
                                      f"the action for {source} must be Remove.")
        if actions.get(source) == "Promote":
            raise ValidationException(f"{source} is already the production variant; it can be Retained, not Promoted.")
        if actions.get(source) == "Remove" and actions.get(shadow) != "Promote":
            raise ValidationException(f"Removing {source} requires promoting {shadow}.")
        exp.stop_request = p
        exp.set("Stopping")
        exp.wake.set()
        return {"InferenceExperimentArn": exp.arn}

    def delete(self, p: dict[str, Any]) -> dict[str, Any]:
        exp = self._get(p["Name"])
        if exp.status in ACTIVE:
            raise ConflictException(f"Inference experiment {exp.name} is {exp.status}; stop it first.")
        with self.b.lock:
            self.b.experiments.pop(exp.name, None)
        return {"InferenceExperimentArn": exp.arn}

    # --- the experiment's own thread ---

    def _run(self, exp: Experiment) -> None:
        exp.set("Created")
        while not self.b.stopping.is_set():
            if exp.stop_request is not None:
                return self._conclude(exp, exp.stop_request)
            t = now()
            if exp.status == "Created" and (exp.start_requested or t >= exp.start_time):
                if not self._begin(exp):
                    return None
            elif exp.status == "Running" and t >= exp.end_time:
                return self._conclude(exp, None)
            exp.wake.wait(0.1)
            exp.wake.clear()
        return None

    def _begin(self, exp: Experiment) -> bool:
        ep = self.b.endpoints.get(exp.endpoint)
        if ep is None:
            exp.set("Cancelled", f"Endpoint {exp.endpoint} no longer exists.")
            return False
        denied = self._role_cannot_manage(exp, ep)
        if denied:
            exp.set("Cancelled", denied)
            exp.completed = now()
            exp.variant_status[exp.shadow_config["ShadowModelVariantName"]] = "Deleted"
            return False
        exp.set("Starting")
        ep.status, ep.modified = "Updating", now()
        cfg = exp.shadow_config
        spec = next(v for v in exp.spec["ModelVariants"] if v["VariantName"] == cfg["ShadowModelVariantName"])
        infra = spec["InfrastructureConfig"]["RealTimeInferenceConfig"]
        try:
            if self.b.stopping.wait(self.b.provisioning_delay):
                return False
            shadow = self.b.build_variant({"VariantName": spec["VariantName"], "ModelName": spec["ModelName"],
                                           "InitialInstanceCount": infra["InstanceCount"],
                                           "InstanceType": infra["InstanceType"],
                                           "InitialVariantWeight": cfg["SamplingPercentage"] / 100},
                                          ep.config_name, role_arn=exp.spec.get("RoleArn"))
        except ArtifactError as exc:
            ep.status, ep.modified = "InService", now()
            exp.set("Cancelled", str(exc))
            exp.completed = now()
            exp.variant_status[cfg["ShadowModelVariantName"]] = "Deleted"
            return False
        exp.shadow, exp.sampling = shadow, cfg["SamplingPercentage"] / 100
        ep.experiment = exp
        ep.status, ep.modified = "InService", now()
        exp.variant_status[shadow.name] = "InService"
        if exp.stop_request is None:  # a stop that came in while starting keeps its Stopping status
            exp.set("Running")
        return True

    def _role_cannot_manage(self, exp: Experiment, ep: Endpoint) -> str | None:
        """The experiment's RoleArn is the role SageMaker "can assume to access model artifacts and container
        images, and manage Amazon SageMaker Inference endpoints for model deployment" (CreateInferenceExperiment,
        RoleArn). What it must be allowed, and what happens otherwise, AWS does not list; the emulator's choice:
        the endpoint calls the experiment makes (DescribeEndpoint, DescribeEndpointConfig, CreateEndpointConfig,
        UpdateEndpoint on the endpoint and its configs), checked when it starts; a denial ends it Cancelled with
        IAM's message as StatusReason and the endpoint untouched."""
        role = exp.spec.get("RoleArn")
        if not role or not sm_iam.active():
            return None
        new_config = self.b.arn("endpoint-config", f"{ep.name[:40]}-ie-*")
        needs = [("sagemaker:DescribeEndpoint", [ep.arn]),
                 ("sagemaker:DescribeEndpointConfig", [self.b.arn("endpoint-config", ep.config_name)]),
                 ("sagemaker:CreateEndpointConfig", [new_config]),
                 ("sagemaker:UpdateEndpoint", [ep.arn, new_config])]
        try:
            _, principal = self.b.roles.client(role, "s3")
            for action, resources in needs:
                sm_iam.authorize(principal, action, resources)
        except sm_iam.Denied as exc:
            return f"The experiment's role cannot manage endpoint {ep.name}: {exc}"
        return None

    def _conclude(self, exp: Experiment, request: dict[str, Any] | None) -> None:
        """End of schedule (request None: shadow removed) or StopInferenceExperiment's actions."""
        ep = self.b.endpoints.get(exp.endpoint)
        source = exp.spec["ShadowModeConfig"]["SourceModelVariantName"]
        shadow_name = exp.shadow_config["ShadowModelVariantName"]
        actions = (request or {}).get("ModelVariantActions", {shadow_name: "Remove"})
        desired = {v["VariantName"]: v for v in (request or {}).get("DesiredModelVariants", [])}
        if ep is not None and exp.shadow is not None and actions.get(shadow_name) in ("Promote", "Retain"):
            ep.status, ep.modified = "Updating", now()
            if not self.b.stopping.wait(self.b.provisioning_delay):
                self._apply(ep, exp, actions[shadow_name], desired.get(shadow_name))
        if ep is not None:
            with ep.lock:
                ep.experiment = None
                ep.status, ep.modified = "InService", now()
        exp.variant_status[shadow_name] = "InService" if actions.get(shadow_name) == "Promote" else "Deleted"
        if actions.get(source) == "Remove":
            exp.variant_status[source] = "Deleted"
        state = (request or {}).get("DesiredState", "Completed")
        exp.completed = now()
        exp.set(state, (request or {}).get("Reason") or (None if request else "The experiment reached its end time."))
        return None

    def _apply(self, ep: Endpoint, exp: Experiment, action: str, desired: dict[str, Any] | None) -> None:
        """Promote: the shadow becomes the production variant; Retain: it stays as the config's shadow."""
        assert exp.shadow is not None and ep.blue is not None
        old = self.b.configs.get(ep.config_name)
        old_spec = old.spec if old else {}
        name = f"{ep.name[:40]}-ie-{uuid.uuid4().hex[:8]}"
        shadow = exp.shadow
        count, itype = shadow.instance_count, shadow.instance_type
        if desired:
            infra = desired["InfrastructureConfig"]["RealTimeInferenceConfig"]
            count, itype = infra["InstanceCount"], infra["InstanceType"]
        shadow_spec = {"VariantName": shadow.name, "ModelName": shadow.model_name,
                       "InitialInstanceCount": count, "InstanceType": itype, "InitialVariantWeight": 1.0}
        if action == "Promote":
            spec = {"EndpointConfigName": name, "ProductionVariants": [shadow_spec]}
            promoted = shadow.moved_to(name)
            promoted.instance_count, promoted.instance_type, promoted.weight = count, itype, 1.0
            fleet = Fleet(name, [promoted], capture=ep.blue.capture)
        else:
            shadow_spec["InitialVariantWeight"] = exp.sampling
            spec = {"EndpointConfigName": name, "ProductionVariants": copy.deepcopy(old_spec.get("ProductionVariants", [])),
                    "ShadowProductionVariants": [shadow_spec]}
            fleet = Fleet(name, [v.moved_to(name) for v in ep.blue.variants], shadow.moved_to(name),
                          exp.sampling, ep.blue.capture)
        for carried in ("DataCaptureConfig", "MetricsConfig"):
            if old_spec.get(carried):
                spec[carried] = copy.deepcopy(old_spec[carried])
        with self.b.lock:
            self.b.configs[name] = Resource(name, self.b.arn("endpoint-config", name), now(), spec)
        ep.finish_update(fleet)
