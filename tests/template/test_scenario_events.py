"""events/<scenario>.json: valid trigger events (or deliberately malformed ones), one per scenario."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from functions.models import S3ObjectCreatedEvent
from guardrail import scenarios

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("*.json"))
README = (ROOT / "events" / "README.md").read_text()
MALFORMED = {"bad-input-malformed-event"}
OUTSIDE_PREFIX = {"bad-input-key-outside-prefix"}
UPLOAD_KEY = re.compile(r"^models/(?P<name>[a-z0-9-]+)/(?P<version>[a-zA-Z0-9.-]+)/model\.tar\.gz$")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_there_is_an_event_per_scenario_of_the_local_cloud():
    names = {p.stem for p in EVENTS}
    assert {s.key for s in scenarios.SCENARIOS} <= names
    assert len(EVENTS) >= 12


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.stem)
def test_event_is_a_trigger_event(path):
    raw = load(path)
    assert f"`{path.name}`" in README, "every event is in the README table"
    if path.stem in MALFORMED:
        with pytest.raises(ValidationError, match="key"):
            S3ObjectCreatedEvent.model_validate(raw)
        return
    event = S3ObjectCreatedEvent.model_validate(raw)
    assert event.detail.object.etag
    key = event.detail.object.key
    if path.stem in OUTSIDE_PREFIX:
        assert not key.startswith("models/")
        return
    match = UPLOAD_KEY.match(key)
    assert match and match["name"] == scenarios.MODEL_NAME, key
    if path.stem in scenarios.BY_KEY:  # the key is where the local cloud stages the scenario's files
        assert key == scenarios.BY_KEY[path.stem].key_in("models/")


def test_events_identify_distinct_uploads():
    keys = [load(p)["detail"]["object"].get("key") for p in EVENTS]
    ids = [load(p)["id"] for p in EVENTS]
    assert len(set(ids)) == len(ids)
    assert len({k for k in keys if k}) == len([k for k in keys if k])
