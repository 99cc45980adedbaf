"""One message never stops a partition (issue 18): what PostgreSQL cannot store, what
the clock says is impossible, and what fails the same way again and again become dead
letters naming the field, and the message behind is handled. Against the real
database; messages go straight to ``process_batch`` as the faust agent hands them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared import db
from shared.clock import SimulatedClock
from shared.envelope import build
from shared.events import TreatmentStopped
from shared.ingress import Message
from shared.runtime import Context, Runtime, ServiceSpec
from shared.timers import TimerRow
from shared.topics import CLINICAL_EVENTS
from tests.integration.harness import settings_for
from tests.integration.sink import SINK, received, record, sink_with

pytestmark = pytest.mark.infra

NOW = datetime(2026, 10, 1, 14, 0, tzinfo=UTC)
TOPIC = CLINICAL_EVENTS.name


def stopped(patient: str, **envelope) -> dict:
    data = TreatmentStopped(patient_id=patient, stopped_at=NOW, reason="patient_choice")
    event = build("ntx.treatment.stopped.v1", data, source="test/hs", time=NOW)
    return {**event, **envelope}


def raw(event: dict) -> bytes:
    return json.dumps(event).encode()


def hostile_cases(patient: str) -> dict[str, tuple[bytes | None, bytes | None, str]]:
    """name: (key, value, the field the dead letter must name)."""
    key = patient.encode()
    nul_data = stopped(patient)
    nul_data["data"]["reason"] = "patient\u0000choice"
    deep = stopped(patient)
    deep["data"]["reason"] = json.loads("[" * 300 + "]" * 300)
    return {
        "tombstone": (key, None, "value"),
        "nul_in_id": (key, raw(stopped(patient, id="a\u0000b")), "id"),
        "nul_in_source": (key, raw(stopped(patient, source="hs\u0000")), "source"),
        "nul_in_data": (key, raw(nul_data), "data.reason"),
        "nul_in_key": (key + b"\x00", raw(stopped(patient)), "key"),
        "nul_in_field_name": (key, raw({**stopped(patient), "x\u0000": 1}), "x\\x00"),
        "lone_surrogate": (key, raw(stopped(patient, id="a\ud800b")), "message"),
        "not_json": (key, b"\xff\xfe not json", "message"),
        "too_deep": (key, raw(deep), "message"),
        "oversize_800k": (key, raw(stopped(patient, id="x" * 800_000)), "message"),
        "time_9999": (key, raw(stopped(patient, time="9999-12-31T23:59:59Z")), "time"),
        "time_year_1": (key, raw(stopped(patient, time="0001-01-01T00:30:00+01:00")), "time"),
        "time_10_min_ahead": (key, raw(stopped(patient, time="2026-10-01T14:10:00Z")), "time"),
    }


@contextlib.asynccontextmanager
async def running(spec: ServiceSpec, infra, schema: str, **settings):
    """The runtime alone, fed by the test: a consumer of the shared topic would also
    hand it every other test's messages."""
    runtime = Runtime(spec, settings_for(infra, **settings), SimulatedClock(NOW), schema=schema)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
async def sink(infra, unique):
    async with running(SINK, infra, f"sink_{unique}") as runtime:
        yield runtime


async def letters(infra, schema: str) -> list[dict]:
    conn = await db.connect(infra.database_url, schema)
    try:
        rows = await conn.fetch(
            'SELECT "offset", key, original_key, field, reason, original FROM dead_letters'
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


@pytest.mark.parametrize("case", list(hostile_cases("p")))
async def test_a_hostile_message_is_dead_lettered_by_name_and_the_next_handled(
    infra, unique, sink, case
):
    patient = f"p-{unique}"
    key, value, field = hostile_cases(patient)[case]
    good = stopped(patient)
    batch = [Message(TOPIC, 0, 1, key, value), Message(TOPIC, 0, 2, patient.encode(), raw(good))]
    outcomes = await asyncio.wait_for(sink.process_batch(batch), 60)
    assert outcomes == ["dead", "handled"]
    assert await received(infra, f"sink_{unique}", patient) == [good["id"]]
    (letter,) = await letters(infra, f"sink_{unique}")
    assert letter["field"] == field, letter["reason"]
    assert letter["original"] == value and letter["original_key"] == key  # kept exactly
    assert "\x00" not in (letter["key"] or "")


async def test_a_time_just_inside_the_skew_is_accepted(infra, unique, sink):
    patient = f"p-{unique}"
    ahead = (NOW + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    outcome = await sink.process(TOPIC, 0, 1, patient.encode(), raw(stopped(patient, time=ahead)))
    assert outcome == "handled"


async def set_unstorable_timer(ctx: Context, event) -> None:
    """A defect outside the handler's own code: the timer it asks for cannot be
    written (a NUL in its key), so the batch fails at flush, every time."""
    if event.envelope.id.startswith("poison"):
        ctx.set_timer(TimerRow(event.patient_id, "k\x00", "kind", NOW, {}))
    await record(ctx, event)


async def test_a_batch_failing_the_same_way_is_given_up_and_only_its_culprit_dead(infra, unique):
    spec = sink_with(set_unstorable_timer)
    patient = f"p-{unique}"
    before, poison, after = (
        stopped(patient),
        stopped(patient, id=f"poison-{unique}"),
        stopped(patient),
    )
    async with running(spec, infra, f"sink_{unique}", poison_attempts=2) as runtime:
        batch = [
            Message(TOPIC, 0, n, patient.encode(), raw(e))
            for n, e in enumerate((before, poison, after))
        ]
        outcomes = await asyncio.wait_for(runtime.process_batch(batch), 60)
        health = await runtime.health()
    assert outcomes == ["handled", "dead", "handled"]
    assert sorted(await received(infra, f"sink_{unique}", patient)) == sorted(
        [before["id"], after["id"]]
    )
    (letter,) = await letters(infra, f"sink_{unique}")
    assert "after 2 attempts" in letter["reason"] and letter["offset"] == 1
    assert health["ok"] and health["stalled"] == []


async def test_dead_letters_on_the_topic_stay_small_and_the_table_keeps_the_original(
    infra, unique, sink
):
    patient = f"p-{unique}"
    big = {size: raw(stopped(patient, id="x" * size)) for size in (800_000, 5_000_000)}
    batch = [Message(TOPIC, 0, n, patient.encode(), value) for n, value in enumerate(big.values())]
    assert await sink.process_batch(batch) == ["dead", "dead"]
    conn = await db.connect(infra.database_url, f"sink_{unique}")
    try:
        rows = await conn.fetch("SELECT topic, value FROM outbox WHERE topic = 'ntx.dlq.v1'")
        stored = {len(r["original"]) for r in await conn.fetch("SELECT original FROM dead_letters")}
    finally:
        await conn.close()
    assert stored == {len(v) for v in big.values()}
    for row in rows:
        assert len(row["value"]) < 100_000  # far below a broker's 1 MiB
        letter = json.loads(row["value"])
        assert letter["truncated"] and letter["original_size"] in stored
        assert letter["ref"].startswith(f"sink_{unique}.dead_letters/")
        assert uuid.UUID(letter["ref"].rsplit("/", 1)[1]) == uuid.UUID(letter["id"])
        assert len(base64.b64decode(letter["original_b64"])) == 64 * 1024
