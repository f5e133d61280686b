"""Shadow-test analysis: production vs shadow variant.

Two methods (SHADOW_METHOD):
- `msprt` (the template's default), `sequential_analysis`: the always-valid sequential verdict of
  `functions.stats.verdict` on cumulative CloudWatch counts, re-evaluated at every poll; when it would
  PROMOTE, or when the time is up, the data capture adds request-by-request pairing with production (and
  ground truth when labels are supplied), data quality, drift and live bias (`functions.stats.evidence`).
  Every verdict carries its numbers (samples, estimates, intervals, thresholds) in `details` and `reasons`.
- `thresholds` (`analyze` + `decide`): fixed rules on the whole window's aggregates, checked once at its end.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from functions.adapters import cloudwatch
from functions.capture import ReadBudget, bounded
from functions.config import Settings
from functions.errors import ArtifactNotFound, InvalidArtifact
from functions.evaluation import FacetBias, ModelEvaluation
from functions.models import GuardrailOverrides, ShadowAnalysis, ShadowState, VariantStats, Verdict
from functions.stats import bias as live_bias
from functions.stats import verdict as sequential
from functions.stats.drift import DriftPolicy
from functions.stats.evidence import ShadowEvidence, assess
from functions.stats.periods import Period
from functions.stats.plan import Plan, lognormal_cv2, plan

NAMESPACE = "AWS/SageMaker"


def _period(start: datetime, end: datetime) -> int:
    # One bucket over the window if possible; periods of >= 60 s must be multiples of 60.
    seconds = max(60, math.ceil((end - start).total_seconds()))
    return math.ceil(seconds / 60) * 60


def variant_stats(endpoint: str, variant: str, start: datetime, end: datetime) -> VariantStats:
    """Aggregate a variant's metrics over [start, end) (series with dimensions EndpointName, VariantName)."""
    dims = {"EndpointName": endpoint, "VariantName": variant}
    window: dict[str, Any] = {
        "namespace": NAMESPACE,
        "dimensions": dims,
        "start": start,
        "end": end,
        "period": _period(start, end),
    }
    errors = cloudwatch.metric_stats(metric="Invocation5XXErrors", stats=["Sum", "SampleCount"], **window)
    latency = cloudwatch.metric_stats(metric="ModelLatency", stats=["Average", "SampleCount"], **window)
    p99 = _p99(window)
    invocations = sum(errors["SampleCount"])
    failed = sum(errors["Sum"])
    weights, averages = latency["SampleCount"], latency["Average"]
    latency_avg = (
        sum(a * w for a, w in zip(averages, weights, strict=True)) / sum(weights)
        if averages and len(averages) == len(weights) and sum(weights) > 0
        else None
    )
    return VariantStats(
        variant=variant,
        invocations=invocations,
        errors_5xx=failed,
        error_rate=failed / invocations if invocations else None,
        latency_avg_us=latency_avg,
        latency_p99_us=max(p99) if p99 else None,  # the worst bucket: conservative
    )


_percentiles = {"supported": True}  # False after the first failure: moto, for one, cannot compute percentiles


def _p99(window: dict[str, Any]) -> list[float]:
    if not _percentiles["supported"]:
        return []
    try:
        return cloudwatch.metric_stats(metric="ModelLatency", stats=["p99"], optional=True, **window)["p99"]
    except Exception:  # optional evidence: any failure (an AWS error, moto's serializer...) means "not available"
        _percentiles["supported"] = False
        return []


def decide(production: VariantStats, shadow: VariantStats, settings: Settings) -> tuple[Verdict, list[str]]:
    """Threshold rules (pure). No or too little data is INCONCLUSIVE, never a pass."""
    if shadow.invocations < settings.shadow_min_invocations or production.invocations == 0:
        return Verdict.INCONCLUSIVE, [
            f"not enough traffic: shadow {shadow.invocations:.0f} request(s) "
            f"(need {settings.shadow_min_invocations}), production {production.invocations:.0f}"
        ]
    reasons: list[str] = []
    prod_rate, shadow_rate = production.error_rate or 0.0, shadow.error_rate or 0.0
    if shadow_rate - prod_rate > settings.shadow_max_error_rate_delta:
        reasons.append(
            f"shadow 5XX rate {shadow_rate:.2%} exceeds production's {prod_rate:.2%} "
            f"by more than {settings.shadow_max_error_rate_delta:.2%}"
        )
    for label, prod_v, shadow_v in (
        ("average", production.latency_avg_us, shadow.latency_avg_us),
        ("p99", production.latency_p99_us, shadow.latency_p99_us),
    ):
        # Slower by the ratio AND by more than the slack: sub-millisecond jitter is not a regression.
        if (
            prod_v
            and shadow_v
            and shadow_v > prod_v * settings.shadow_max_latency_ratio
            and shadow_v - prod_v > settings.shadow_latency_slack_micros
        ):
            reasons.append(
                f"shadow {label} latency {shadow_v:.0f}µs is over {settings.shadow_max_latency_ratio}x "
                f"production's {prod_v:.0f}µs"
            )
    if reasons:
        return Verdict.REJECT, reasons
    return Verdict.PROMOTE, [
        f"shadow 5XX rate {shadow_rate:.2%} vs production {prod_rate:.2%}; latency within "
        f"{settings.shadow_max_latency_ratio}x over {shadow.invocations:.0f} shadow request(s)"
    ]


def analyze(
    endpoint: str,
    production_variant: str,
    shadow_variant: str,
    start: datetime,
    end: datetime,
    settings: Settings,
) -> ShadowAnalysis:
    """Compare the two variants over [start, end) and return a verdict with its evidence."""
    production = variant_stats(endpoint, production_variant, start, end)
    shadow = variant_stats(endpoint, shadow_variant, start, end)
    verdict, reasons = decide(production, shadow, settings)
    return ShadowAnalysis(verdict=verdict, reasons=reasons, production=production, shadow=shadow)


# --------------------------------------------------------------------------------------------------------
# The sequential verdict (SHADOW_METHOD=msprt)
# --------------------------------------------------------------------------------------------------------


def policy_for(settings: Settings, overrides: GuardrailOverrides | None = None) -> sequential.VerdictPolicy:
    """The verdict's error rate, margins and minimums: template settings, then deployment.json `guardrails`."""
    values: dict[str, Any] = {
        "alpha": settings.shadow_alpha,
        "min_requests": settings.shadow_min_invocations,
        "min_latency_samples": settings.shadow_min_latency_samples,
        "error_margin": settings.shadow_error_margin,
        "tail_margin": settings.shadow_tail_margin,
        "latency_margin": settings.shadow_latency_margin,
        "auc_margin": settings.shadow_auc_margin,
        "max_malformed_fraction": settings.shadow_max_malformed_fraction,
        "on_inconclusive": settings.shadow_on_inconclusive,
    }
    if overrides is not None:
        values |= overrides.model_dump(exclude_none=True, exclude={"ground_truth_uri"})
    return sequential.VerdictPolicy.model_validate(values)


def variant_sample(
    endpoint: str, variant: str, start: datetime, end: datetime, period: int, config: str | None = None,
    name: str | None = None, tail_threshold: float | None = None,
) -> sequential.VariantSample:
    """One variant (of one fleet, with `config`) over [start, end), PERIOD BY PERIOD, so that the verdict
    compares the arms within each period (statistics audit §3 #1, #10): 5XX Sum / SampleCount, 4XX Sum,
    ModelLatency Sum / SampleCount and, with `tail_threshold`, `TC(threshold:)` (requests above it)."""
    dims = {"EndpointName": endpoint, "VariantName": variant}
    if config:
        dims["EndpointConfigName"] = config  # the dimension SageMaker adds per fleet during a deployment
    window: dict[str, Any] = {
        "namespace": NAMESPACE,
        "dimensions": dims,
        "start": start,
        "end": end,
        "period": period,
    }
    errors = cloudwatch.metric_periods(metric="Invocation5XXErrors", stats=["Sum", "SampleCount"], **window)
    client_errors = cloudwatch.metric_periods(metric="Invocation4XXErrors", stats=["Sum"], **window)["Sum"]
    latency = cloudwatch.metric_periods(metric="ModelLatency", stats=["Sum", "SampleCount"], **window)
    exceed = _exceedances(window, tail_threshold) if tail_threshold else None
    periods = [
        Period(
            t, errors["SampleCount"].get(t, 0.0), errors["Sum"].get(t, 0.0), latency["Sum"].get(t, 0.0),
            latency["SampleCount"].get(t, 0.0), exceed.get(t, 0.0) if exceed is not None else None,
            client_errors.get(t, 0.0),
        )
        for t in sorted(set(errors["SampleCount"]) | set(latency["SampleCount"]))
    ]
    return sequential.VariantSample.from_periods(name or variant, periods)


def _exceedances(window: dict[str, Any], threshold: float) -> dict[float, float] | None:
    """Requests above `threshold` per period (CloudWatch's `TC(threshold:)` extended statistic), or None."""
    stat = f"TC({threshold:.0f}:)"
    try:
        return cloudwatch.metric_periods(metric="ModelLatency", stats=[stat], optional=True, **window)[stat]
    except Exception:  # optional evidence: an implementation without extended statistics means "no tail test"
        return None


def pre_test_plan(
    endpoint: str, variant: str, start: datetime, seconds: int, settings: Settings,
    policy: sequential.VerdictPolicy, share: float, *, mirrored: bool, tail: bool,
) -> Plan | None:
    """The plan of `functions.stats.plan` from production's traffic in the hour BEFORE the test: expected
    minutes to a decision and P(inconclusive) for an equal model, and whether the duration can decide."""
    window: dict[str, Any] = {
        "namespace": NAMESPACE,
        "dimensions": {"EndpointName": endpoint, "VariantName": variant},
        "start": start - timedelta(seconds=3600),
        "end": start,
        "period": 3600,
    }
    try:
        errors = cloudwatch.metric_stats(metric="Invocation5XXErrors", stats=["Sum", "SampleCount"], **window)
    except Exception:  # the plan is advice: without history there is none
        return None
    requests = sum(errors["SampleCount"])
    if requests <= 0:
        return None
    rps = requests / 3600
    p50 = p99 = None
    if _percentiles["supported"]:
        try:
            q = cloudwatch.metric_stats(metric="ModelLatency", stats=["p50", "p99"], optional=True, **window)
            p50, p99 = (max(q["p50"]) if q["p50"] else None), (max(q["p99"]) if q["p99"] else None)
        except Exception:
            _percentiles["supported"] = False
    prod_rps, cand_rps = (rps, rps * share) if mirrored else (rps * (1 - share), rps * share)
    return plan(
        production_rps=prod_rps, candidate_rps=cand_rps, duration_seconds=seconds,
        period_seconds=settings.metric_period_seconds, policy=policy,
        error_rate=sum(errors["Sum"]) / requests, latency_cv2=lognormal_cv2(p50, p99), tail=tail,
    )


def baseline_tail_threshold(endpoint: str, variant: str, start: datetime, seconds: int = 3600) -> float | None:
    """Production's p99 latency over the hour BEFORE the test (fixed before any test data: the tail
    metric's threshold), or None when CloudWatch cannot say."""
    window: dict[str, Any] = {
        "namespace": NAMESPACE,
        "dimensions": {"EndpointName": endpoint, "VariantName": variant},
        "start": start - timedelta(seconds=seconds),
        "end": start,
        "period": seconds,
    }
    values = _p99(window)
    return max(values) if values else None


def _stats(sample: sequential.VariantSample) -> VariantStats:
    lat = sample.latency
    if sample.periods is not None:
        n = sum(p.latency_count for p in sample.periods)
        return VariantStats(
            variant=sample.name, invocations=sample.requests, errors_5xx=sample.errors,
            error_rate=sample.errors / sample.requests if sample.requests else None,
            latency_avg_us=sum(p.latency_sum for p in sample.periods) / n if n else None,  # arithmetic mean
        )
    return VariantStats(
        variant=sample.name,
        invocations=sample.requests,
        errors_5xx=sample.errors,
        error_rate=sample.errors / sample.requests if sample.requests else None,
        latency_avg_us=math.exp(lat.mean_log) if lat is not None and lat.count else None,  # geometric mean
    )


_AGE_LIKE = ("_group", "_band", "_bucket")


def facet_cut(facet: FacetBias, evaluation: ModelEvaluation) -> tuple[str, live_bias.NumericCut] | None:
    """A numeric facet's bins from its training group labels ("<30", "30-59", "60+" over `age`), or None.

    Training cuts a numeric feature into right-closed integer bins and names the facet `<feature>_group`.
    """
    feature = next((facet.facet[: -len(s)] for s in _AGE_LIKE if facet.facet.endswith(s)), None)
    if feature is None or feature not in evaluation.features:
        return None
    bounds: list[tuple[float, float, str]] = []
    try:
        for group in (g.group for g in facet.groups):
            if group.startswith("<"):
                bounds.append((-1e12, float(group[1:]) - 1, group))
            elif group.endswith("+"):
                bounds.append((float(group[:-1]) - 1, 1e12, group))
            else:
                low, high = group.split("-")
                bounds.append((float(low) - 1, float(high), group))
    except ValueError:
        return None
    if not bounds:
        return None
    bounds.sort()
    edges = [bounds[0][0]] + [b[1] for b in bounds]
    try:
        return feature, live_bias.NumericCut(edges=edges, labels=[b[2] for b in bounds])
    except ValueError:
        return None


def live_bias_reports(
    evaluation: ModelEvaluation, rows: list[list[str]], scores: list[float], max_deviation: float
) -> list[dict[str, Any]]:
    """The training bias metrics recomputed on the shadow's live answers, for each facet present in traffic."""
    out = []
    for facet in evaluation.bias:
        cut = facet_cut(facet, evaluation)
        try:
            if cut is not None:
                feature, numeric = cut
                groups = live_bias.facet_groups(evaluation, rows, feature, cut=numeric)
            else:
                groups = live_bias.facet_groups(evaluation, rows, facet.facet)
            report = live_bias.check(
                scores, groups, facet=facet.facet, threshold=evaluation.metrics.threshold,
                training=facet, max_deviation=max_deviation,
            )
        except ValueError:
            continue  # the facet is not a feature the endpoint receives
        if report.rows:
            out.append(report.model_dump(mode="json"))
    return out


def _capture_evidence(
    shadow: ShadowState,
    start: datetime,
    end: datetime,
    settings: Settings,
    policy: sequential.VerdictPolicy,
    production: sequential.VariantSample,
    candidate: sequential.VariantSample,
    final: bool = True,
) -> tuple[ShadowEvidence, list[dict[str, Any]]] | None:
    """The verdict with what the data capture adds; None when nothing is captured. The paired tests act only
    when `final` (one look, statistics audit §3 #7)."""
    from functions.steps import data_checks  # the S3 readers (kept out of the thresholds path's imports)

    if not shadow.capture_uri or not shadow.production_variant:
        return None
    evaluation = None
    if shadow.evaluation_uri:
        try:
            evaluation = data_checks.read_evaluation(shadow.evaluation_uri)
        except ArtifactNotFound:
            evaluation = None
    production_evaluation = None  # production's own threshold for its accuracy (statistics audit §3 #9)
    if shadow.production_evaluation_uri:
        try:
            production_evaluation = data_checks.read_evaluation(shadow.production_evaluation_uri)
        except (ArtifactNotFound, InvalidArtifact):
            production_evaluation = None
    endpoint = shadow.endpoint_name
    # Bounded in memory and time (audit row 8): one sampling fraction for both variants (by request id, so
    # pairs survive) chosen from CloudWatch's request counts, a cap per variant, and a deadline for the read.
    expected = max(production.requests, candidate.requests)
    shadow_budget = ReadBudget.for_traffic(expected, settings.capture_max_records, settings.capture_read_seconds / 2)
    production_budget = ReadBudget.for_traffic(
        expected, settings.capture_max_records, settings.capture_read_seconds / 2
    )
    shadow_records = list(  # kept for the bias check below: at most capture_max_records
        bounded(
            data_checks.capture_records(
                shadow.capture_uri, endpoint, shadow.shadow_variant, start, end, keep=shadow_budget.keep
            ),
            shadow_budget,
        )
    )
    production_budget.deadline = shadow_budget.deadline + settings.capture_read_seconds / 2
    production_records = bounded(
        data_checks.capture_records(
            shadow.capture_uri, endpoint, shadow.production_variant, start, end, keep=production_budget.keep
        ),
        production_budget,
    )
    truth = (
        data_checks.ground_truth_records(shadow.ground_truth_uri, endpoint, start, end)
        if shadow.ground_truth_uri else None
    )
    evidence = assess(
        production, candidate, policy, final=final, mirrored=True, expected_share=_share(shadow),
        production_capture=production_records, shadow_capture=iter(shadow_records), ground_truth=truth,
        evaluation=evaluation, drift_policy=DriftPolicy(psi_major=settings.drift_psi_major),
        production_evaluation=production_evaluation,
    )
    bias: list[dict[str, Any]] = []
    if evaluation is not None and evaluation.bias:
        rows, scores = [], []
        for rec in shadow_records:
            if rec.rows and rec.scores and len(rec.rows) == len(rec.scores):
                rows += rec.rows
                scores += rec.scores
        bias = live_bias_reports(evaluation, rows, scores, settings.max_disparate_impact_deviation)
    return evidence, bias


_VERDICTS = {
    sequential.Decision.PROMOTE: Verdict.PROMOTE,
    sequential.Decision.REJECT: Verdict.REJECT,
}


def sequential_analysis(
    shadow: ShadowState, start: datetime, end: datetime, settings: Settings, *, final: bool
) -> ShadowAnalysis:
    """The verdict at this poll. Decisive when the shadow is clearly worse (REJECT), clearly not worse on
    every metric including the capture's (PROMOTE), or when `final` (INCONCLUSIVE / NO_DATA -> default)."""
    policy = sequential.VerdictPolicy.model_validate(shadow.policy or {})
    period = settings.metric_period_seconds
    if policy.tail_threshold_micros is None and shadow.production_variant:
        threshold = baseline_tail_threshold(shadow.endpoint_name, shadow.production_variant, start)
        if threshold:
            policy = policy.model_copy(update={"tail_threshold_micros": threshold})
    tail = policy.tail_threshold_micros
    production = variant_sample(shadow.endpoint_name, shadow.production_variant or "", start, end, period,
                                tail_threshold=tail)
    candidate = variant_sample(shadow.endpoint_name, shadow.shadow_variant, start, end, period, tail_threshold=tail)
    verdict = sequential.decide(production, candidate, policy, final=final, mirrored=True,
                                expected_share=_share(shadow))
    details: dict[str, Any] = {"policy": policy.model_dump(mode="json"), "final": final}
    reasons = [verdict.explanation]
    duration = int((datetime.fromisoformat(shadow.ends_at) - start).total_seconds()) if shadow.ends_at else 0
    # The plan made at the start (shadow_test.start_shadow_test); documents from before it: made here.
    forecast = Plan.model_validate(shadow.plan) if shadow.plan else (
        pre_test_plan(shadow.endpoint_name, shadow.production_variant, start, duration, settings, policy,
                      shadow.sampling_percent / 100, mirrored=True, tail=tail is not None)
        if shadow.production_variant and duration > 0 else None
    )
    if forecast is not None:
        details["plan"] = forecast.model_dump(mode="json")
        if not forecast.decidable:
            reasons.append(forecast.explanation)
    wants_capture = verdict.decision is sequential.Decision.PROMOTE or (
        final and verdict.decision is sequential.Decision.INCONCLUSIVE
    )
    if wants_capture and not final and shadow.ground_truth_uri and shadow.capture_uri:
        # The paired (ground-truth) tests are fixed-sample: one look, at the end (statistics audit §3 #7). Until
        # then a sequential PROMOTE waits, without reading the capture at every poll.
        details["verdict"] = verdict.model_dump(mode="json")
        details["withheld"] = "PROMOTE withheld until the paired tests' single look at the end of the test"
        return _analysis(Verdict.INCONCLUSIVE, False, [*reasons, details["withheld"]], production, candidate, details)
    if wants_capture:
        found = _capture_evidence(shadow, start, end, settings, policy, production, candidate, final)
        if found is not None:
            evidence, bias = found
            details["evidence"] = _evidence_details(evidence, bias)
            reasons = evidence.explanation.split(" | ") + [b["explanation"] for b in bias]
            if forecast is not None and not forecast.decidable:  # the start's warning stays in the notification
                reasons.append(forecast.explanation)
            # Capture evidence may withhold an early PROMOTE (paired tests wait for the end, junk traffic): go on.
            if evidence.verdict.decision in (sequential.Decision.INCONCLUSIVE, sequential.Decision.CONTINUE) and not final:
                details["verdict"] = verdict.model_dump(mode="json")
                details["withheld"] = evidence.verdict.explanation
                return _analysis(Verdict.INCONCLUSIVE, False, reasons, production, candidate, details)
            verdict = evidence.verdict
    details["verdict"] = verdict.model_dump(mode="json")
    decided = _VERDICTS.get(verdict.decision)
    if decided is not None:
        return _analysis(decided, True, reasons, production, candidate, details)
    return _analysis(Verdict.INCONCLUSIVE, final, reasons, production, candidate, details)


def _share(shadow: ShadowState) -> float | None:
    """The share of production's requests the experiment mirrors (for the sample-ratio check)."""
    return shadow.sampling_percent / 100 if 0 < shadow.sampling_percent < 100 else None


def _evidence_details(evidence: ShadowEvidence, bias: list[dict[str, Any]]) -> dict[str, Any]:
    from functions.steps.data_checks import drift_summary, quality_summary

    return {
        "flags": list(evidence.flags),
        "paired": evidence.paired.model_dump(mode="json") if evidence.paired else None,
        "data_quality": quality_summary(evidence.data_quality) if evidence.data_quality else None,
        "drift": drift_summary(evidence.drift) if evidence.drift else None,
        "bias": bias,
    }


def _analysis(
    verdict: Verdict, decisive: bool, reasons: list[str], production: sequential.VariantSample,
    candidate: sequential.VariantSample, details: dict[str, Any],
) -> ShadowAnalysis:
    return ShadowAnalysis(
        verdict=verdict, decisive=decisive, reasons=reasons, production=_stats(production),
        shadow=_stats(candidate), method="msprt", details=details,
    )


def canary_analysis(
    endpoint: str,
    previous: tuple[str, str],
    target: tuple[str, str],
    start: datetime,
    end: datetime,
    settings: Settings,
    *,
    final: bool = False,
    policy: sequential.VerdictPolicy | None = None,
    capacity_share: float | None = None,
    minimum_share: float | None = None,
) -> ShadowAnalysis:
    """The same sequential verdict for a canary phase: production = the old fleet, shadow = the new fleet,
    each read under its `EndpointConfigName` dimension. `previous` / `target` are (config, variant).
    `capacity_share`: the new fleet's share of the canary step's requests (its capacity share); a sample-ratio
    mismatch within the step withholds PROMOTE (the verdict then says why in `blocked_by`). `minimum_share`
    (LINEAR): the first step's capacity share, below which no period of the steps may fall.
    (check_deployment calls it at each poll when CANARY_VERDICT=msprt; a REJECT publishes the verdict metric
    that the third auto-rollback alarm watches, so SageMaker itself rolls back.)"""
    policy = policy or policy_for(settings)
    period = settings.metric_period_seconds
    if policy.tail_threshold_micros is None:  # the old fleet's p99 in the hour before the deployment
        threshold = baseline_tail_threshold(endpoint, previous[1], start)
        if threshold:
            policy = policy.model_copy(update={"tail_threshold_micros": threshold})
    tail = policy.tail_threshold_micros
    old = variant_sample(endpoint, previous[1], start, end, period, config=previous[0], name=previous[0],
                         tail_threshold=tail)
    new = variant_sample(endpoint, target[1], start, end, period, config=target[0], name=target[0],
                         tail_threshold=tail)
    verdict = sequential.decide(old, new, policy, final=final, expected_share=capacity_share,
                                minimum_share=minimum_share)
    decided = _VERDICTS.get(verdict.decision)
    analysis = _analysis(
        decided or Verdict.INCONCLUSIVE, decided is not None or final, [verdict.explanation], old, new,
        {"policy": policy.model_dump(mode="json"), "final": final, "verdict": verdict.model_dump(mode="json"),
         "capacity_share": capacity_share, "minimum_share": minimum_share},
    )
    return analysis.model_copy(update={"method": "msprt-canary"})
