"""Serving fleets: the variants of one endpoint config, each with its loaded model, and how traffic picks one."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from local.sagemaker.container import ServedModel


@dataclass
class Variant:
    name: str
    model_name: str
    config_name: str
    weight: float
    instance_count: int
    instance_type: str
    image: str
    served: ServedModel
    started: datetime
    metrics_period: int = 60  # seconds between invocation-metric publications (the config's MetricsConfig)
    role_arn: str | None = None  # the model's ExecutionRoleArn: SageMaker reads artifacts and writes capture with it

    def moved_to(self, config_name: str, name: str | None = None) -> Variant:
        return replace(self, config_name=config_name, name=name or self.name)

    def summary(self, current_weight: float | None = None, current_count: int | None = None) -> dict[str, Any]:
        return {
            "VariantName": self.name,
            "DeployedImages": [{"SpecifiedImage": self.image, "ResolvedImage": self.image,
                                "ResolutionTime": self.started}],
            "CurrentWeight": self.weight if current_weight is None else current_weight,
            "DesiredWeight": self.weight,
            "CurrentInstanceCount": self.instance_count if current_count is None else current_count,
            "DesiredInstanceCount": self.instance_count,
        }


@dataclass
class Fleet:
    """The production variants (plus an optional shadow) that one endpoint config puts in service."""

    config_name: str
    variants: list[Variant]
    shadow: Variant | None = None
    shadow_sampling: float = 0.0  # fraction of requests mirrored to the shadow
    capture: dict[str, Any] | None = None  # the config's DataCaptureConfig, when enabled
    _weights: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._weights = [max(v.weight, 0.0) for v in self.variants]

    @property
    def instance_count(self) -> int:
        return sum(v.instance_count for v in self.variants)

    def pick(self) -> Variant:
        if len(self.variants) == 1:
            return self.variants[0]
        if sum(self._weights) <= 0:
            return random.choice(self.variants)
        return random.choices(self.variants, weights=self._weights)[0]

    def find(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)
