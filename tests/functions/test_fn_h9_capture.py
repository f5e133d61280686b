"""Audit row 8: the final shadow check reads data capture bounded in memory and time (streamed, sampled by
request id so both variants keep the same requests, capped per variant, stopped at a deadline)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from functions import capture
from functions.capture import CaptureRecord, ReadBudget, bounded, sampled

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _records(n: int | None, variant: str = "p"):
    for i in itertools.count() if n is None else range(n):
        yield CaptureRecord(event_id=f"{variant}-{i}", inference_id=f"req-{i}", scores=[0.5])


def test_cap_stops_reading_an_endless_stream():
    budget = ReadBudget(max_records=1000, deadline=float("inf"))
    kept = list(bounded(_records(None), budget))
    assert len(kept) == 1000 and budget.truncated == "records"


def test_deadline_stops_reading(monkeypatch):
    clock = iter(range(10**9))
    monkeypatch.setattr(capture.time, "monotonic", lambda: next(clock))
    budget = ReadBudget(max_records=10**9, deadline=1000)
    kept = list(bounded(_records(None), budget))
    assert budget.truncated == "time" and 0 < len(kept) < 10**9


def test_sampling_keeps_the_same_requests_in_both_variants():
    production = {r.key for r in _records(20_000, "p") if sampled(r.key, 0.1)}
    shadow = {r.key for r in _records(20_000, "s") if sampled(r.key, 0.1)}
    assert production == shadow  # joined on inferenceId: pairs survive sampling
    assert 1_600 < len(production) < 2_400  # ~10 %


def test_budget_samples_to_the_cap_from_the_expected_traffic():
    budget = ReadBudget.for_traffic(expected_records=1_000_000, max_records=50_000, seconds=60)
    assert budget.fraction == pytest.approx(0.05)
    assert ReadBudget.for_traffic(expected_records=10, max_records=50_000, seconds=60).fraction == 1.0


def test_final_shadow_check_never_holds_the_whole_capture(monkeypatch):
    """_capture_evidence used to list() every shadow record; with the budget it reads at most the cap."""
    from functions.config import Settings
    from functions.models import ShadowState
    from functions.stats import verdict as sequential
    from functions.steps import data_checks, shadow_analysis

    cap = 2_000

    def endless(uri, endpoint, variant, since, until, keep=None):
        yielded = 0
        for rec in _records(None, variant):
            if keep is None or keep(rec.key):
                yielded += 1
                if yielded > cap + 1:
                    raise AssertionError("pulled past the cap: the capture is not bounded")
                yield rec

    monkeypatch.setattr(data_checks, "capture_records", endless)
    settings = Settings(capture_max_records=cap, capture_read_seconds=30)
    shadow = ShadowState(status="RUNNING", experiment_name="e", endpoint_name="ep", production_variant="p",
                         shadow_variant="s", shadow_model="m", sampling_percent=100, capture_uri="s3://b/c")  # fmt: skip
    sample = sequential.VariantSample(name="x", requests=1_000, errors=0)  # CloudWatch undercounts
    out = shadow_analysis._capture_evidence(
        shadow, START, START + timedelta(hours=1), settings, sequential.VerdictPolicy(), sample, sample
    )
    assert out is not None
    evidence, _ = out
    assert evidence is not None
