"""One call for a shadow test's (or canary's) whole evidence: the sequential verdict on CloudWatch counts,
plus, from data capture, request-by-request pairing with production, data quality and drift of the traffic.

The shadow's capture is read once: each record is tapped into the data-quality and drift windows as the
pairing streams it. Paired (ground-truth) tests are fixed-sample tests, so they join the verdict only at the
end (`final=True`); before that they are reported, not acted on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict

from functions.capture import CaptureRecord, GroundTruthRecord
from functions.evaluation import ModelEvaluation
from functions.stats.data_quality import (
    DataQualityPolicy,
    DataQualityReport,
    DataQualityWindow,
    malformed_fraction,
)
from functions.stats.drift import DriftPolicy, DriftReport, DriftWindow
from functions.stats.paired import PairedReport, compare
from functions.stats.verdict import Decision, VariantSample, Verdict, VerdictPolicy, decide

Flag = Literal["DRIFT", "DATA_QUALITY"]


class ShadowEvidence(BaseModel):
    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    paired: PairedReport | None = None
    data_quality: DataQualityReport | None = None
    drift: DriftReport | None = None
    flags: list[Flag] = []  # worth a notification even when the verdict is PROMOTE
    explanation: str


def assess(
    production: VariantSample,
    shadow: VariantSample,
    policy: VerdictPolicy | None = None,
    *,
    final: bool = False,
    production_capture: Iterable[CaptureRecord] | None = None,
    shadow_capture: Iterable[CaptureRecord] | None = None,
    ground_truth: Iterable[GroundTruthRecord] | None = None,
    evaluation: ModelEvaluation | None = None,
    max_pairs: int = 50_000,
    drift_policy: DriftPolicy | None = None,
    quality_policy: DataQualityPolicy | None = None,
    production_evaluation: ModelEvaluation | None = None,
    mirrored: bool = False,
    expected_share: float | None = None,
) -> ShadowEvidence:
    """The verdict at one poll with everything the capture can add (all capture arguments are optional).

    `evaluation` (the shadow model's evaluation.json) gives the baseline for drift/data quality and the
    decision threshold for the pairing; `production_evaluation` (production's) gives production's own threshold.
    Capture iterables are consumed once, as streams. The paired (ground-truth) tests are fixed-sample tests,
    evaluated ONCE, at the end (`final=True`): before that, with ground truth supplied, a PROMOTE is withheld
    (CONTINUE) so that the paired look is not skipped and not repeated.
    """
    policy = policy or VerdictPolicy()
    quality = drift = None
    dq_window = drift_window = None
    if evaluation is not None and shadow_capture is not None:
        dq_window = DataQualityWindow(evaluation, policy=quality_policy)
        drift_window = DriftWindow(evaluation, policy=drift_policy)

    def tapped(records: Iterable[CaptureRecord]) -> Iterator[CaptureRecord]:
        for rec in records:
            if dq_window is not None and drift_window is not None:
                dq_window.add_record(rec)
                drift_window.add_record(rec)
            yield rec

    paired = None
    if shadow_capture is not None and production_capture is not None:
        threshold = evaluation.metrics.threshold if evaluation is not None else 0.5
        paired = compare(
            production_capture, tapped(shadow_capture), ground_truth,
            threshold=threshold, max_pairs=max_pairs, alpha=policy.paired_alpha,
            production_threshold=production_evaluation.metrics.threshold if production_evaluation else None,
        )
    elif shadow_capture is not None:
        for _ in tapped(shadow_capture):
            pass
    if dq_window is not None and drift_window is not None:
        quality, drift = dq_window.report(), drift_window.report()
    verdict = decide(
        production, shadow, policy, final=final,
        paired=paired.evidence(policy) if paired is not None and final else None,
        malformed_fraction=malformed_fraction(quality) if quality is not None else None,
        mirrored=mirrored, expected_share=expected_share,
    )
    if not final and ground_truth is not None and verdict.decision is Decision.PROMOTE:
        verdict = verdict.model_copy(update={
            "decision": Decision.CONTINUE, "action": None,
            "blocked_by": "ground truth supplied: the paired tests are evaluated once, at the end of the test",
            "explanation": verdict.explanation.replace("PROMOTE:", "CONTINUE (PROMOTE withheld until the paired "
                                                       "tests' single look at the end):", 1),
        })
    flags: list[Flag] = []
    if drift is not None and drift.drifted:
        flags.append("DRIFT")
    if quality is not None and quality.rows and quality.rows_with_breaches / quality.rows > 0.05:
        flags.append("DATA_QUALITY")
    parts = [verdict.explanation]
    if paired is not None and paired.agreement is not None:
        parts.append(f"agreement {100 * paired.agreement:.1f}% over {paired.pairs} paired rows")
    if quality is not None:
        parts.append(f"data quality: {quality.explanation}")
    if drift is not None:
        parts.append(drift.explanation)
    return ShadowEvidence(
        verdict=verdict, paired=paired, data_quality=quality, drift=drift, flags=flags, explanation=" | ".join(parts)
    )
