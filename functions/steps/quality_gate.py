"""quality_gate: the candidate's evaluation.json against thresholds, the production model, bias bounds and
the serving container. Any failed check raises ModelRejected with every reason."""

from __future__ import annotations

import re

from pydantic import ValidationError

from functions.adapters import s3, sagemaker
from functions.config import Settings
from functions.errors import ArtifactNotFound, InvalidArtifact, ModelRejected
from functions.evaluation import ModelEvaluation
from functions.models import BiasCheck, GateResult, Upload

_IMAGE_TAG = re.compile(r":(\d+)\.(\d+)-(\d+)")
_VERSION = re.compile(r"^(\d+)\.(\d+)")


def load_evaluation(bucket: str, key: str) -> ModelEvaluation:
    raw = s3.read_json(bucket, key)
    try:
        return ModelEvaluation.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'root'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise InvalidArtifact(f"s3://{bucket}/{key} is not a valid evaluation: {problems}") from exc


def serving_framework_version(image: str | None) -> str | None:
    """'...sagemaker-xgboost:3.0-5' (or '3.0-5-cpu-py3') -> '3.0-5'."""
    match = _IMAGE_TAG.search(image or "")
    return f"{match[1]}.{match[2]}-{match[3]}" if match else None


def production_evaluation(
    endpoint: str, candidate_model: str
) -> tuple[str | None, ModelEvaluation | None, str | None]:
    """(model the endpoint serves now, its evaluation.json, why that report is unusable). A served model without
    a readable report is a problem, not a pass: without it the gate cannot compare schema, data set or facets."""
    described = sagemaker.describe_endpoint(endpoint)
    if not described or not described.get("EndpointConfigName"):
        return None, None, None
    config = sagemaker.describe_endpoint_config(described["EndpointConfigName"]) or {}
    variants = config.get("ProductionVariants") or []
    model_name = variants[0].get("ModelName") if variants else None
    if not model_name or model_name == candidate_model:
        return model_name, None, None
    model = sagemaker.describe_model(model_name) or {}
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    url = container.get("ModelDataUrl", "")
    if not url.startswith("s3://"):
        return model_name, None, f"production model {model_name} has no S3 artifact to find its evaluation.json beside"
    bucket, key = s3.split_uri(url)
    evaluation_key = key.rsplit("/", 1)[0] + "/evaluation.json"
    where = f"s3://{bucket}/{evaluation_key}"
    try:
        return model_name, load_evaluation(bucket, evaluation_key), None
    except ArtifactNotFound:
        return model_name, None, f"production's evaluation.json {where} is missing"
    except InvalidArtifact as exc:
        return model_name, None, f"production's evaluation.json {where} is unreadable ({exc})"


def schema_reasons(candidate: ModelEvaluation, production: ModelEvaluation) -> list[str]:
    """A candidate must answer the same requests as production: same data set and label, same CSV columns in
    the same order (a model with one column fewer answers 400 or, worse, predicts on shifted columns)."""
    reasons: list[str] = []
    if (candidate.dataset.name, candidate.label) != (production.dataset.name, production.label):
        reasons.append(
            f"trained on data set {candidate.dataset.name!r} (label {candidate.label!r}), production on "
            f"{production.dataset.name!r} (label {production.label!r})"
        )
    ours, theirs = candidate.features, production.features
    if len(ours) != len(theirs):
        reasons.append(f"the candidate takes {len(ours)} feature(s), production's model takes {len(theirs)}")
    else:
        diff = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), None)
        if diff is not None:
            reasons.append(
                f"feature order differs from production's at column {diff}: {ours[diff]!r} vs {theirs[diff]!r}"
            )
    guarded = [f.facet for f in production.bias if f.guarded and candidate.facet(f.facet) is None]
    if guarded:
        reasons.append(
            f"production guards facet(s) {', '.join(guarded)}; the candidate has no bias report for them"
        )
    return reasons


def decide(
    candidate: ModelEvaluation,
    settings: Settings,
    production: ModelEvaluation | None = None,
    production_model: str | None = None,
    production_problem: str | None = None,
) -> GateResult:
    """Pure decision: every check that fails adds a reason."""
    reasons: list[str] = []
    if production_problem:
        reasons.append(f"{production_problem}: cannot compare with the model in production; restore it first")
    if production is not None:
        reasons.extend(schema_reasons(candidate, production))
    auc = candidate.metrics.auc
    if auc < settings.min_auc:
        reasons.append(f"AUC {auc:.4f} is below the minimum {settings.min_auc:.4f}")
    production_auc = production.metrics.auc if production else None
    if production_auc is not None and auc < production_auc - settings.max_auc_drop:
        reasons.append(
            f"AUC {auc:.4f} is worse than production's {production_auc:.4f} "
            f"by more than {settings.max_auc_drop:.4f}"
        )

    checks: list[BiasCheck] = []
    for facet in candidate.bias:
        # Enforce the configured facets, or by default every facet training marked as guarded.
        if settings.bias_facets and facet.facet not in settings.bias_facets:
            continue
        if not settings.bias_facets and not getattr(facet, "guarded", True):
            continue
        di, dppl = facet.disparate_impact, facet.difference_in_positive_proportions
        ok = True
        if abs(1 - di) > settings.max_disparate_impact_deviation:
            ok = False
            reasons.append(
                f"disparate impact on {facet.facet} is {di:.3f}, outside 1 ± {settings.max_disparate_impact_deviation}"
            )
        if dppl > settings.max_positive_proportion_difference:
            ok = False
            reasons.append(
                f"difference in positive proportions on {facet.facet} is {dppl:.3f}, "
                f"above {settings.max_positive_proportion_difference}"
            )
        checks.append(
            BiasCheck(
                facet=facet.facet, disparate_impact=di, difference_in_positive_proportions=dppl, passed=ok
            )
        )
    missing = [f for f in settings.bias_facets if candidate.facet(f) is None]
    if missing:
        reasons.append(f"no bias report for required facet(s): {', '.join(missing)}")

    serving = serving_framework_version(settings.serving_image)
    if serving:
        if candidate.container_framework_version != serving:
            reasons.append(
                f"artifact built for container {candidate.container_framework_version}, "
                f"serving image is {serving}"
            )
        trained = _VERSION.match(candidate.xgboost_version)
        if not trained or serving.split("-")[0] != f"{trained[1]}.{trained[2]}":
            reasons.append(f"xgboost {candidate.xgboost_version} cannot be served by container {serving}")

    return GateResult(
        passed=not reasons,
        auc=auc,
        min_auc=settings.min_auc,
        production_model=production_model,
        production_auc=production_auc,
        max_auc_drop=settings.max_auc_drop,
        bias=checks,
        xgboost_version=candidate.xgboost_version,
        serving_framework_version=serving,
        reasons=reasons,
    )


def quality_gate(upload: Upload, settings: Settings) -> GateResult:
    candidate = load_evaluation(upload.bucket, upload.evaluation_key)
    production_model, production, problem = production_evaluation(upload.endpoint_name, upload.names.model)
    result = decide(candidate, settings, production, production_model, problem)
    if not result.passed:
        raise ModelRejected(result.reasons)
    return result
