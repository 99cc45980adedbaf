"""The committed JSON Schemas and AsyncAPI document match the code (run `ntx schemas`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.schemas import render
from shared.topics import ALL_TOPICS, EVENT_TYPES

DOCS = Path(__file__).parents[1] / "docs"


def test_committed_contracts_match_the_models():
    expected = render()
    committed = {
        str(p.relative_to(DOCS)): p.read_text()
        for p in [*DOCS.glob("schemas/*.json"), DOCS / "asyncapi.yaml"]
        if p.exists()
    }
    stale = sorted(k for k in expected if committed.get(k) != expected[k])
    extra = sorted(set(committed) - set(expected))
    assert not stale and not extra, (
        f"docs out of date (run `ntx schemas`): stale {stale}, extra {extra}"
    )


def test_asyncapi_covers_every_topic_and_event_type():
    doc = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert doc["asyncapi"] == "3.1.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {t.name for t in ALL_TOPICS}
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert set(EVENT_TYPES) <= names
