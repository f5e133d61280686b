"""InvokeEndpoint: route to a variant, run its container, mirror to the shadow, capture, record metrics."""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from local.cloudwatch_logs import container_error
from local.sagemaker.capture import capture_record
from local.sagemaker.container import ContainerError
from local.sagemaker.errors import ModelError, ValidationError
from local.sagemaker.fleet import Variant
from local.sagemaker.state import Endpoint, Host


@dataclass
class Answer:
    body: bytes
    content_type: str
    variant: str


class Runtime:
    def __init__(self, backend: Host) -> None:
        self.backend = backend
        # shadows run off the caller's path; a small pool bounds their cost
        self._shadow_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sm-shadow")

    def stop(self) -> None:
        self._shadow_pool.shutdown(wait=True, cancel_futures=True)

    def invoke(
        self, endpoint: str, body: bytes, content_type: str, accept: str,
        target_variant: str | None = None, inference_id: str | None = None, received: float | None = None,
    ) -> Answer:
        received = received if received is not None else time.perf_counter()
        ep = self.backend.endpoints.get(endpoint)
        if ep is None or ep.blue is None or ep.status not in ("InService", "Updating"):
            if ep is None:
                raise ValidationError(f"Endpoint {endpoint} of account 123456789012 not found.")
            raise ValidationError(f"Endpoint {endpoint} is not in service (status {ep.status}).")
        if target_variant:
            variant = ep.find_variant(target_variant)
            if variant is None:
                raise ValidationError(f"Variant {target_variant} not found for endpoint {endpoint}.")
            fleet = ep.blue if ep.blue.find(target_variant) is variant else ep.green
        else:
            fleet = ep.serving_fleet()
            variant = fleet.pick()
        inference_id = inference_id or str(uuid.uuid4())
        content_type = content_type or "application/octet-stream"

        status, out, out_type, model_us, error = self._run(variant, body, content_type, accept)
        self.backend.metrics.record(
            endpoint, variant.name, variant.config_name, status, model_us,
            max(0.0, (time.perf_counter() - received) * 1e6 - (model_us or 0.0)), variant.metrics_period,
        )
        self._capture(ep, fleet.capture if fleet else None, variant, body, content_type, out, out_type,
                      inference_id)
        self._mirror(ep, fleet, body, content_type, accept, inference_id)
        if error is not None:
            container_error(endpoint, variant, error.message, self.backend.region)  # CloudWatch Logs, as SageMaker
            raise ModelError(error.status, error.message,
                             f"arn:aws:logs:{self.backend.region}:123456789012:log-group:/aws/sagemaker/Endpoints/{endpoint}")
        return Answer(out, out_type, variant.name)

    @staticmethod
    def _run(variant: Variant, body: bytes, content_type: str, accept: str
             ) -> tuple[int, bytes, str, float | None, ContainerError | None]:
        t0 = time.perf_counter()
        try:
            out, out_type = variant.served.invoke(body, content_type, accept)
        except ContainerError as exc:
            return exc.status, exc.message.encode(), "text/plain", (time.perf_counter() - t0) * 1e6, exc
        return 200, out, out_type, (time.perf_counter() - t0) * 1e6, None

    def _capture(self, ep: Endpoint, capture: dict[str, Any] | None, variant: Variant, body: bytes,
                 content_type: str, out: bytes, out_type: str, inference_id: str) -> None:
        destinations = []
        if capture and random.random() * 100 < capture.get("InitialSamplingPercentage", 100):
            modes = {o["CaptureMode"] for o in capture.get("CaptureOptions", [])} or {"Input", "Output"}
            destinations.append((capture["DestinationS3Uri"], "Input" in modes, "Output" in modes, variant.role_arn))
        exp = ep.experiment
        if exp is not None and exp.destination:
            destinations.append((exp.destination, True, True, exp.spec.get("RoleArn")))
        for dest, cin, cout, role in destinations:
            rec = capture_record(body, content_type, out, out_type, inference_id, cin, cout)
            self.backend.capture.add(dest, ep.name, variant.name, rec, role)

    def _mirror(self, ep: Endpoint, fleet: Any, body: bytes, content_type: str, accept: str,
                inference_id: str) -> None:
        exp = ep.experiment
        if exp is not None and exp.shadow is not None:
            shadow, sampling, dest = exp.shadow, exp.sampling, exp.destination
        elif fleet is not None and fleet.shadow is not None:
            shadow, sampling, dest = fleet.shadow, fleet.shadow_sampling, None
        else:
            return
        if random.random() >= sampling:
            return
        with contextlib.suppress(RuntimeError):  # pool shut down: the emulator is stopping
            self._shadow_pool.submit(self._shadow, ep, fleet, shadow, dest, body, content_type, accept,
                                     inference_id)

    def _shadow(self, ep: Endpoint, fleet: Any, shadow: Variant, dest: str | None, body: bytes,
                content_type: str, accept: str, inference_id: str) -> None:
        t0 = time.perf_counter()
        status, out, out_type, model_us, _ = self._run(shadow, body, content_type, accept)
        overhead = max(0.0, (time.perf_counter() - t0) * 1e6 - (model_us or 0.0))
        self.backend.metrics.record(ep.name, shadow.name, shadow.config_name, status, model_us, overhead,
                                    shadow.metrics_period)
        if dest:
            self.backend.capture.add(dest, ep.name, shadow.name,
                                     capture_record(body, content_type, out, out_type, inference_id),
                                     ep.experiment.spec.get("RoleArn") if ep.experiment is not None else None)
        elif fleet is not None and fleet.capture:
            self._capture(ep, fleet.capture, shadow, body, content_type, out, out_type, inference_id)
