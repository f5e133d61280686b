"""The emulator's state and its control-plane operations (models, endpoint configs, endpoints).

Every operation takes the validated request params and returns the response dict; long-running work
(provisioning, blue/green updates, experiments) runs in threads that all stop on `Backend.stopping`.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from local.sagemaker import deployment, experiments, runtime
from local.sagemaker import iam as sm_iam
from local.sagemaker.capture import CaptureWriter
from local.sagemaker.container import ArtifactError, ServedModel, unpack
from local.sagemaker.errors import ResourceLimitExceeded, UnknownOperationException, ValidationException
from local.sagemaker.fleet import Fleet, Variant
from local.sagemaker.metrics import PUBLISH_FREQUENCIES, MetricsPublisher, publish_period
from local.sagemaker.state import ACCOUNT, Endpoint, Resource, now, page

log = logging.getLogger(__name__)

MAX_ENDPOINTS = 100  # account limit the emulator enforces (ResourceLimitExceeded beyond it)
# An artifact the execution role may not read. AWS documents no text; this is the message field reports quote
# from SageMaker (CreateModel / CreateEndpoint): "Could not access model data at s3://... Please ensure that the
# role ... exists and that its trust relationship policy allows the action "sts:AssumeRole" for the service
# principal "sagemaker.amazonaws.com". Also ensure that the role has "s3:GetObject" permissions ...".
ACCESS_REASON = ('Could not access model data at {url}. Please ensure that the role "{role}" exists and that its '
                 'trust relationship policy allows the action "sts:AssumeRole" for the service principal '
                 '"sagemaker.amazonaws.com". Also ensure that the role has "s3:GetObject" permissions and that the '
                 'object is located in {region}.')


class Backend:
    def __init__(
        self,
        aws_endpoint_url: str | None,
        region: str = "us-east-1",
        provisioning_delay: float = 0.5,
        alarm_poll_interval: float = 0.5,
        flush_interval: float = 1.0,
    ) -> None:
        self.region = region
        self.provisioning_delay = provisioning_delay
        self.alarm_poll_interval = alarm_poll_interval
        session = boto3.session.Session(region_name=region)
        creds = {} if session.get_credentials() else {
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                     max_pool_connections=20)
        self.s3 = session.client("s3", endpoint_url=aws_endpoint_url, config=cfg, **creds)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=aws_endpoint_url, config=cfg, **creds)
        self.metrics = MetricsPublisher(self.cloudwatch, flush_interval)
        self.roles = sm_iam.RoleSessions(aws_endpoint_url, region)
        self.capture = CaptureWriter(self.s3, flush_interval, client_for=self.s3_for)
        self.models: dict[str, Resource] = {}
        self.configs: dict[str, Resource] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.experiments: dict[str, Any] = {}
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runtime = runtime.Runtime(self)
        self._ops = {
            "CreateModel": self.create_model, "DescribeModel": self.describe_model,
            "DeleteModel": self.delete_model, "ListModels": self.list_models,
            "CreateEndpointConfig": self.create_endpoint_config,
            "DescribeEndpointConfig": self.describe_endpoint_config,
            "DeleteEndpointConfig": self.delete_endpoint_config,
            "ListEndpointConfigs": self.list_endpoint_configs,
            "CreateEndpoint": self.create_endpoint, "DescribeEndpoint": self.describe_endpoint,
            "UpdateEndpoint": self.update_endpoint, "DeleteEndpoint": self.delete_endpoint,
            "ListEndpoints": self.list_endpoints,
            **experiments.operations(self),
        }

    # --- lifecycle ---

    def start(self) -> None:
        self.metrics.start()
        self.capture.start()

    def stop(self) -> None:
        self.stopping.set()
        for t in list(self._threads):
            t.join(timeout=30)
        self.runtime.stop()
        self.metrics.stop()
        self.capture.stop()

    def spawn(self, target: Any, *args: Any, name: str) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except Exception:
                log.exception("background task %s failed", name)

        t = threading.Thread(target=guarded, name=name, daemon=True)
        with self.lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def dispatch(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = self._ops.get(op)
        if handler is None:
            raise UnknownOperationException(f"Operation SageMaker.{op} is not supported by the local emulator.")
        return handler(params)

    # --- helpers ---

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:{kind}/{name.lower()}"

    def model(self, name: str) -> Resource:
        if name not in self.models:
            raise ValidationException(f'Could not find model "{self.arn("model", name)}".')
        return self.models[name]

    def _config(self, name: str) -> Resource:
        if name not in self.configs:
            raise ValidationException(f'Could not find endpoint configuration "{self.arn("endpoint-config", name)}".')
        return self.configs[name]

    def endpoint(self, name: str) -> Endpoint:
        if name not in self.endpoints:
            raise ValidationException(f'Could not find endpoint "{self.arn("endpoint", name)}".')
        return self.endpoints[name]

    def s3_for(self, role_arn: str | None) -> Any:
        """S3 as SageMaker uses it: with the role's credentials when IAM is enforced (raises sm_iam.Denied)."""
        if role_arn and sm_iam.active():
            return self.roles.client(role_arn, "s3")[0]
        return self.s3

    def describe_alarms(self, names: list[str], role_arn: str | None) -> list[dict[str, Any]]:
        """DescribeAlarms with the endpoint's execution role (AWS: "Ensure that your IAM execution role has
        permission to perform the cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify.").
        Raises sm_iam.Denied when the role may not."""
        client = self.cloudwatch
        if role_arn and sm_iam.active():
            client = self.roles.client(role_arn, "cloudwatch")[0]
        try:
            return client.describe_alarms(AlarmNames=names)["MetricAlarms"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"):
                raise sm_iam.Denied(exc.response["Error"].get("Message", str(exc))) from None
            raise

    def alarms_in_alarm(self, names: list[str], role_arn: str | None = None) -> list[str]:
        """Alarms in ALARM; raises sm_iam.Denied when the role cannot read them (the deployment rolls back)."""
        if not names:
            return []
        try:
            alarms = self.describe_alarms(names, role_arn)
        except sm_iam.Denied:
            raise
        except Exception:  # a transient moto hiccup must not roll back a deployment
            log.exception("describe_alarms failed")
            return []
        return [a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM"]

    def execution_role(self, config_name: str) -> str | None:
        """The execution role SageMaker uses for an endpoint config (its first production variant's model's)."""
        config = self.configs.get(config_name)
        for v in (config.spec.get("ProductionVariants", []) if config else []):
            model = self.models.get(v.get("ModelName", ""))
            if model is not None and model.spec.get("ExecutionRoleArn"):
                return str(model.spec["ExecutionRoleArn"])
        return None

    def build_variant(self, spec: dict[str, Any], config_name: str, role_arn: str | None = None) -> Variant:
        """Provision one variant: fetch and unpack model.tar.gz (with the model's ExecutionRoleArn, or `role_arn`),
        load it as the container does."""
        model = self.models.get(spec["ModelName"])
        if model is None:
            raise ArtifactError(f'Could not find model "{self.arn("model", spec["ModelName"])}".')
        container = model.spec.get("PrimaryContainer") or (model.spec.get("Containers") or [{}])[0]
        url = container.get("ModelDataUrl")
        if not url or not url.startswith("s3://"):
            raise ArtifactError(f"Model {spec['ModelName']} has no S3 ModelDataUrl; the emulator serves model.tar.gz only.")
        bucket, _, key = url[5:].partition("/")
        role = role_arn or model.spec.get("ExecutionRoleArn")
        try:
            data = self.s3_for(role).get_object(Bucket=bucket, Key=key)["Body"].read()
        except sm_iam.Denied as exc:
            raise ArtifactError(ACCESS_REASON.format(url=url, role=role, region=self.region) + f" ({exc})") from None
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("AccessDenied", "403"):
                raise ArtifactError(ACCESS_REASON.format(url=url, role=role, region=self.region)) from None
            raise ArtifactError(f"Could not find model data at {url}. ({exc})") from None
        except Exception as exc:
            raise ArtifactError(f"Could not find model data at {url}. ({exc})") from None
        served = ServedModel.from_files(unpack(data, url))
        if served.load_error:
            log.warning("model %s will answer 500: %s", spec["ModelName"], served.load_error)
        return Variant(
            name=spec["VariantName"], model_name=spec["ModelName"], config_name=config_name,
            weight=float(spec.get("InitialVariantWeight", 1.0)),
            instance_count=int(spec.get("InitialInstanceCount", 1)),
            instance_type=spec.get("InstanceType", "ml.m5.large"),
            image=container.get("Image", ""), served=served, started=now(),
            metrics_period=publish_period((self.configs[config_name].spec if config_name in self.configs else {})
                                          .get("MetricsConfig")),
            role_arn=role,
        )

    def build_fleet(self, config_name: str) -> Fleet:
        spec = self._config(config_name).spec
        if self.stopping.wait(self.provisioning_delay):
            raise ArtifactError("emulator stopping")
        variants = [self.build_variant(v, config_name) for v in spec["ProductionVariants"]]
        shadow, sampling = None, 0.0
        if spec.get("ShadowProductionVariants"):
            s = spec["ShadowProductionVariants"][0]
            shadow = self.build_variant(s, config_name)
            prod_weight = sum(v.weight for v in variants) or 1.0
            sampling = min(1.0, float(s.get("InitialVariantWeight", 1.0)) / prod_weight)
        capture = spec.get("DataCaptureConfig")
        return Fleet(config_name, variants, shadow, sampling,
                     capture if capture and capture.get("EnableCapture", True) else None)

    # --- models ---

    def create_model(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        if not p.get("PrimaryContainer") and not p.get("Containers"):
            raise ValidationException("Either PrimaryContainer or Containers must be specified.")
        with self.lock:
            if name in self.models:
                raise ValidationException(f'Cannot create already existing model "{self.arn("model", name)}".')
            res = Resource(name, self.arn("model", name), now(), copy.deepcopy(p))
            self.models[name] = res
        return {"ModelArn": res.arn}

    def describe_model(self, p: dict[str, Any]) -> dict[str, Any]:
        m = self.model(p["ModelName"])
        spec = {k: v for k, v in m.spec.items() if k != "Tags"}
        return {**spec, "ModelArn": m.arn, "CreationTime": m.created}

    def delete_model(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.model(p["ModelName"])
            del self.models[p["ModelName"]]
        return {}

    def list_models(self, p: dict[str, Any]) -> dict[str, Any]:
        items = [{"ModelName": m.name, "ModelArn": m.arn, "CreationTime": m.created}
                 for m in self.models.values() if p.get("NameContains", "") in m.name]
        return page(items, p, "Models", "ModelName")

    # --- endpoint configs ---

    def create_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        variants = p["ProductionVariants"] + p.get("ShadowProductionVariants", [])
        names = [v["VariantName"] for v in variants]
        if len(set(names)) != len(names):
            raise ValidationException(f"Variant names must be unique within an endpoint configuration: {names}.")
        if p.get("ShadowProductionVariants") and (len(p["ProductionVariants"]) != 1 or len(p["ShadowProductionVariants"]) != 1):
            raise ValidationException("With ShadowProductionVariants you can only specify one production variant "
                                      "and one shadow variant.")
        frequency = (p.get("MetricsConfig") or {}).get("MetricPublishFrequencyInSeconds")
        if frequency is not None and frequency not in PUBLISH_FREQUENCIES:  # API_MetricsConfig: valid values
            raise ValidationException(
                f"Value '{frequency}' at 'metricsConfig.metricPublishFrequencyInSeconds' failed to satisfy "
                f"constraint: Member must satisfy enum value set: {list(PUBLISH_FREQUENCIES)}")
        for v in variants:
            if "ModelName" not in v:
                raise ValidationException(f"ModelName is required for variant {v['VariantName']}.")
            self.model(v["ModelName"])
            if "InstanceType" not in v and "ServerlessConfig" not in v:
                raise ValidationException(f"InstanceType is required for variant {v['VariantName']}.")
        with self.lock:
            if name in self.configs:
                raise ValidationException(
                    f'Cannot create already existing endpoint configuration "{self.arn("endpoint-config", name)}".')
            res = Resource(name, self.arn("endpoint-config", name), now(), copy.deepcopy(p))
            self.configs[name] = res
        return {"EndpointConfigArn": res.arn}

    def describe_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        c = self._config(p["EndpointConfigName"])
        spec = {k: v for k, v in c.spec.items() if k != "Tags"}
        return {**spec, "EndpointConfigArn": c.arn, "CreationTime": c.created}

    def delete_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._config(p["EndpointConfigName"])
            del self.configs[p["EndpointConfigName"]]
        return {}

    def list_endpoint_configs(self, p: dict[str, Any]) -> dict[str, Any]:
        items = [{"EndpointConfigName": c.name, "EndpointConfigArn": c.arn, "CreationTime": c.created}
                 for c in self.configs.values() if p.get("NameContains", "") in c.name]
        return page(items, p, "EndpointConfigs", "EndpointConfigName")

    # --- endpoints ---

    def create_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name, config = p["EndpointName"], p["EndpointConfigName"]
        self._config(config)
        if p.get("DeploymentConfig"):
            _check_deployment_config(p["DeploymentConfig"])
        with self.lock:
            if name in self.endpoints:
                raise ValidationException(f'Cannot create already existing endpoint "{self.arn("endpoint", name)}".')
            if len(self.endpoints) >= MAX_ENDPOINTS:
                raise ResourceLimitExceeded(
                    f"The account-level service limit 'Number of endpoints' is {MAX_ENDPOINTS} Endpoints.")
            ep = Endpoint(name, self.arn("endpoint", name), now(), config,
                          last_deployment_config=p.get("DeploymentConfig"))
            ep.start_pending(config, self.configs[config].spec["ProductionVariants"])
            self.endpoints[name] = ep
        self.spawn(self._provision, ep, name=f"create-{name}")
        return {"EndpointArn": ep.arn}

    def _provision(self, ep: Endpoint) -> None:
        try:
            fleet = self.build_fleet(ep.config_name)
        except ArtifactError as exc:
            with ep.lock:
                ep.status, ep.failure_reason, ep.pending, ep.modified = "Failed", str(exc), None, now()
            return
        with ep.lock:
            if ep.status == "Deleting":
                return
            ep.blue, ep.status, ep.pending, ep.modified = fleet, "InService", None, now()

    def update_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        ep = self.endpoint(p["EndpointName"])
        new_config = p["EndpointConfigName"]
        spec = copy.deepcopy(self._config(new_config).spec)
        with ep.lock:
            if ep.status == "Failed":
                raise ValidationException(f'Cannot update failed endpoint "{ep.arn}".')
            if ep.status != "InService" or ep.blue is None:
                raise ValidationException(f'Cannot update in-progress endpoint "{ep.arn}".')
            if ep.experiment is not None:
                raise ValidationException(f'Cannot update endpoint "{ep.arn}" while inference experiment '
                                          f"{ep.experiment.name} is running on it.")
            dc = ep.last_deployment_config if p.get("RetainDeploymentConfig") else p.get("DeploymentConfig")
            if dc:
                _check_deployment_config(dc)
                if dc.get("RollingUpdatePolicy"):
                    _check_single_variant(ep, spec)
                if dc.get("BlueGreenUpdatePolicy") or dc.get("RollingUpdatePolicy"):
                    _check_same_variant_names(ep.config_name, ep.blue, new_config, spec)
                total = sum(v.get("InitialInstanceCount", 1) for v in spec["ProductionVariants"])
                if dc.get("BlueGreenUpdatePolicy"):
                    deployment.validate_policy(dc["BlueGreenUpdatePolicy"], total)
                if dc.get("RollingUpdatePolicy"):
                    deployment.validate_rolling(dc["RollingUpdatePolicy"], total)
                alarms = [a["AlarmName"] for a in (dc.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
                self._check_alarms_exist(alarms, self.execution_role(new_config))
            if p.get("RetainAllVariantProperties"):
                _retain_variant_properties(spec, ep.blue, p.get("ExcludeRetainedVariantProperties", []))
            ep.status, ep.modified = "Updating", now()
            if dc:
                ep.last_deployment_config = copy.deepcopy(dc)
            ep.start_pending(new_config, spec["ProductionVariants"])
        self.spawn(self._update, ep, new_config, spec, dc, name=f"update-{ep.name}")
        return {"EndpointArn": ep.arn}

    def _check_alarms_exist(self, names: list[str], role_arn: str | None = None) -> None:
        if not names:
            return
        try:
            found = {a["AlarmName"] for a in self.describe_alarms(names, role_arn)}
        except sm_iam.Denied as exc:  # assumption: AWS documents the permission, not the failure
            raise ValidationException(
                f"The execution role {role_arn} cannot read the auto-rollback alarms: {exc}. Ensure that your IAM "
                "execution role has permission to perform the cloudwatch:DescribeAlarms action on the "
                "auto-rollback alarms you specify.") from None
        missing = [n for n in names if n not in found]
        if missing:
            raise ValidationException(f"The following alarms for automatic rollback do not exist: {missing}.")

    def _update(self, ep: Endpoint, config_name: str, spec: dict[str, Any], dc: dict[str, Any] | None) -> None:
        try:
            if self.stopping.wait(self.provisioning_delay):
                return
            variants = [self.build_variant(v, config_name) for v in spec["ProductionVariants"]]
            shadow = None
            if spec.get("ShadowProductionVariants"):
                shadow = self.build_variant(spec["ShadowProductionVariants"][0], config_name)
        except ArtifactError as exc:
            return ep.roll_back(f"Failed to update endpoint: {exc}")
        sampling = 0.0
        if shadow is not None:
            sampling = min(1.0, shadow.weight / (sum(v.weight for v in variants) or 1.0))
        capture = spec.get("DataCaptureConfig")
        green = Fleet(config_name, variants, shadow, sampling,
                      capture if capture and capture.get("EnableCapture", True) else None)
        deployment.run_update(self, ep, green, dc)
        return None

    def describe_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        ep = self.endpoint(p["EndpointName"])
        with ep.lock:
            out: dict[str, Any] = {
                "EndpointName": ep.name, "EndpointArn": ep.arn, "EndpointConfigName": ep.config_name,
                "EndpointStatus": ep.status, "CreationTime": ep.created, "LastModifiedTime": ep.modified,
                "FailureReason": ep.failure_reason,
                "LastDeploymentConfig": copy.deepcopy(ep.last_deployment_config),
                "PendingDeploymentSummary": copy.deepcopy(ep.pending),
            }
            fleet = ep.blue
            if fleet is not None:
                out["ProductionVariants"] = [v.summary(current_count=ep.blue_live) for v in fleet.variants]
                shadow = fleet.shadow
                if ep.experiment is not None and ep.experiment.shadow is not None:
                    shadow = ep.experiment.shadow
                if shadow is not None:
                    out["ShadowProductionVariants"] = [shadow.summary()]
                if fleet.capture:
                    c = fleet.capture
                    out["DataCaptureConfig"] = {
                        "EnableCapture": True, "CaptureStatus": "Started",
                        "CurrentSamplingPercentage": c.get("InitialSamplingPercentage", 100),
                        "DestinationS3Uri": c["DestinationS3Uri"]}
        return out

    def delete_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        ep = self.endpoint(p["EndpointName"])
        with ep.lock:
            if ep.experiment is not None:
                raise ValidationException(f'Cannot delete endpoint "{ep.arn}" while an inference experiment runs on it.')
            ep.status = "Deleting"
        with self.lock:
            self.endpoints.pop(ep.name, None)
        return {}

    def list_endpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        items = [{"EndpointName": e.name, "EndpointArn": e.arn, "CreationTime": e.created,
                  "LastModifiedTime": e.modified, "EndpointStatus": e.status}
                 for e in self.endpoints.values()
                 if p.get("NameContains", "") in e.name and p.get("StatusEquals", e.status) == e.status]
        return page(items, p, "Endpoints", "EndpointName")


def _check_deployment_config(dc: dict[str, Any]) -> None:
    if dc.get("BlueGreenUpdatePolicy") and dc.get("RollingUpdatePolicy"):
        raise ValidationException("Only one update policy can be specified in DeploymentConfig.")


def _check_same_variant_names(live_config: str, blue: Fleet, new_config: str, spec: dict[str, Any]) -> None:
    """AWS "Exclusions" (deployment guardrails): "When doing a blue/green or rolling deployment, your new endpoint
    configuration must have the same variant name as the old endpoint configuration."
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html
    The error text is ours: no AWS source gives the exact message."""
    live = sorted(v.name for v in blue.variants)
    new = sorted(v["VariantName"] for v in spec["ProductionVariants"])
    if live != new:
        raise ValidationException(
            f"For a blue/green or rolling deployment the new endpoint configuration {new_config} must have the same "
            f"production variant names as the current endpoint configuration {live_config}: {new} != {live}.")


def _check_single_variant(ep: Endpoint, spec: dict[str, Any]) -> None:
    """AWS "Exclusions": "If you're doing a rolling deployment, there are additional feature-based exclusions:
    Serverless inference endpoints, Multi-variant inference endpoints." A shadow variant (a running shadow test is
    refused earlier) makes the endpoint multi-variant too. AWS documents no error text; this one is ours."""
    assert ep.blue is not None
    live = len(ep.blue.variants) + (ep.blue.shadow is not None)
    new = len(spec["ProductionVariants"]) + len(spec.get("ShadowProductionVariants") or [])
    if live > 1 or new > 1:
        raise ValidationException(
            f"Rolling deployments are not supported for multi-variant endpoints: endpoint {ep.name} serves {live} "
            f"variant(s) and the new endpoint configuration has {new}; use a blue/green deployment.")
    if any(v.get("ServerlessConfig") for v in spec["ProductionVariants"]):
        raise ValidationException("Rolling deployments are not supported for serverless inference endpoints.")


def _retain_variant_properties(spec: dict[str, Any], blue: Fleet, excluded: list[dict[str, str]]) -> None:
    """RetainAllVariantProperties: variants that keep their name keep their current weight and count."""
    skip = {e["VariantPropertyType"] for e in excluded}
    for v in spec["ProductionVariants"]:
        current = blue.find(v["VariantName"])
        if current is None:
            continue
        if "DesiredWeight" not in skip:
            v["InitialVariantWeight"] = current.weight
        if "DesiredInstanceCount" not in skip:
            v["InitialInstanceCount"] = current.instance_count
