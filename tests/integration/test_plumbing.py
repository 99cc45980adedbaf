"""Outbox, inbox and dead letters against the real broker and database (DESIGN.md §5)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from shared import db, outbox
from shared.clock import SystemClock
from shared.envelope import build
from shared.events import DoseAdministered
from shared.runtime import Runtime
from shared.topics import CLINICAL_EVENTS, DLQ
from tests.integration.harness import Harness, eventually, produce, read_topic, settings_for
from tests.integration.sink import SINK, SINK_MIGRATIONS, received

pytestmark = pytest.mark.infra


def dose_event(patient: str, id_: str | None = None) -> dict:
    data = DoseAdministered(
        patient_id=patient, administered_at=datetime(2026, 1, 5, 7, 30, tzinfo=UTC), dose_mg=50
    )
    return build(
        "ntx.dose.administered.v1",
        data,
        source="test/hs",
        time=datetime(2026, 1, 5, 8, tzinfo=UTC),  # the harness clock: not from the future
        id_=id_,
    )


async def test_outbox_event_delivered_twice_is_handled_once(infra, unique):
    """A relay that re-sends (crash before stamping) must not double the effect."""
    patient = f"p-{unique}"
    envelope = dose_event(patient)
    sender = f"sender_{unique}"
    await db.migrate(infra.database_url, sender, SINK_MIGRATIONS)
    conn = await db.connect(infra.database_url, sender)
    await outbox.enqueue_events(conn, [envelope, envelope])
    await conn.close()
    relay = Runtime(SINK, settings_for(infra), SystemClock(), schema=sender)
    async with Harness(SINK, infra, f"sink_{unique}") as sink:
        await relay.start()  # its relay publishes both rows
        try:
            assert await eventually(lambda: _settled(sink, patient, 2))
            ids = await received(infra, f"sink_{unique}", patient)
        finally:
            await relay.stop()
    assert ids == [envelope["id"]]
    assert sink.outcomes_for(patient) == ["handled", "repeat"]


async def _settled(h: Harness, patient: str, n: int) -> bool:
    return len(h.outcomes_for(patient)) >= n


async def test_malformed_message_is_dead_lettered_and_next_one_handled(infra, unique):
    patient = f"p-{unique}"
    bad = dose_event(patient)
    bad["data"]["dose_mg"] = "fifty"
    good = dose_event(patient)
    async with Harness(SINK, infra, f"sink_{unique}"):
        await produce(
            infra.bootstrap, CLINICAL_EVENTS.name, patient.encode(), json.dumps(bad).encode()
        )
        await produce(infra.bootstrap, CLINICAL_EVENTS.name, patient.encode(), b"{not json")
        await produce(
            infra.bootstrap, CLINICAL_EVENTS.name, patient.encode(), json.dumps(good).encode()
        )
        assert await eventually(lambda: _has(infra, f"sink_{unique}", patient))
        letters = await read_topic(
            infra.bootstrap, DLQ.name, until=lambda ms: len(_mine(ms, patient)) >= 2
        )
    mine = _mine(letters, patient)
    assert [m["field"] for m in mine] == ["data.dose_mg", None] or mine[0][
        "field"
    ] == "data.dose_mg"
    assert "25, 50, 100 or 150" in mine[0]["reason"]  # the doses DESIGN.md §3.3 allows
    assert mine[1]["reason"]  # truncated JSON names why
    assert await received(infra, f"sink_{unique}", patient) == [good["id"]]


async def _has(infra, schema: str, patient: str) -> bool:
    return bool(await received(infra, schema, patient))


def _mine(messages, patient: str) -> list[dict]:
    letters = [json.loads(m.value) for m in messages]
    return [d for d in letters if d.get("key") == patient]


async def test_relay_keeps_events_while_broker_paused(infra, unique):
    if infra.broker is None:
        pytest.skip("needs the embedded broker to pause it (external broker configured)")
    patient = f"p-{unique}"
    schema = f"relay_{unique}"
    h = Harness(SINK, infra, schema)
    await h.runtime.start()
    try:
        infra.broker.pause()
        try:
            conn = await db.connect(infra.database_url, schema)
            events = [dose_event(patient) for _ in range(5)]
            await outbox.enqueue_events(conn, events)
            h.runtime.wake_relay()
            await asyncio.sleep(2.0)
            pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            assert pending == 5
        finally:
            infra.broker.resume()
        assert await eventually(lambda: _all_sent(conn), timeout=60)
        await conn.close()
    finally:
        await h.runtime.stop()
    got = await read_topic(
        infra.bootstrap,
        CLINICAL_EVENTS.name,
        until=lambda ms: len([m for m in ms if m.key == patient.encode()]) >= 5,
    )
    ids = [json.loads(m.value)["id"] for m in got if m.key == patient.encode()]
    assert ids == [e["id"] for e in events]


async def _all_sent(conn) -> bool:
    return await conn.fetchval("SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL")
