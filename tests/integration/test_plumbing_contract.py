"""One plumbing suite, two implementations (eventsourcing's one test case on several
stores): the inbox, the outbox, the timers and the dead letters behave the same in
PostgreSQL (:class:`shared.plumbing.PgPlumbing`, on the session's embedded
database, marked ``infra``) and in memory (:class:`shared.memory.MemoryPlumbing`,
what handler tests and the replay run on)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from shared import db
from shared.deadletter import dead_letter
from shared.envelope import build
from shared.events import TreatmentStopped
from shared.inbox import Seen
from shared.memory import MemoryPlumbing
from shared.plumbing import PgPlumbing, Plumbing
from shared.timers import TimerRow
from shared.topics import CLINICAL_EVENTS, DLQ
from tests.integration.sink import SINK_MIGRATIONS

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.infra)])
async def plumbing(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[Plumbing]:
    if request.param == "memory":
        yield MemoryPlumbing()
        return
    infra = request.getfixturevalue("infra")
    schema = f"plumbing_{unique}"
    await db.migrate(infra.database_url, schema, SINK_MIGRATIONS)
    conn = await db.connect(infra.database_url, schema)
    try:
        yield PgPlumbing(conn, schema)
    finally:
        await conn.close()


def stopped(patient: str, id_: str | None = None) -> dict:
    data = TreatmentStopped(patient_id=patient, stopped_at=NOW, reason="other")
    return build("ntx.treatment.stopped.v1", data, source="test/hs", time=NOW, id_=id_)


def timer(patient: str, key: str, due_at: datetime, **payload) -> TimerRow:
    return TimerRow(patient, key, "kind", due_at, payload)


# --- inbox ------------------------------------------------------------------------


async def test_inbox_a_new_id_then_a_repeat_then_a_reuse_with_another_body(plumbing):
    assert await plumbing.claim_inbox([("hs", "1", "a")]) == [Seen.NEW]
    assert await plumbing.claim_inbox([("hs", "1", "a")]) == [Seen.REPEAT]
    assert await plumbing.claim_inbox([("hs", "1", "b")]) == [Seen.CONFLICT]
    assert await plumbing.claim_inbox([("other", "1", "b")]) == [Seen.NEW]  # source + id


async def test_inbox_within_one_batch_the_first_of_two_equal_ids_is_new(plumbing):
    claims = [("hs", "1", "a"), ("hs", "2", "a"), ("hs", "1", "a"), ("hs", "1", "z")]
    assert await plumbing.claim_inbox(claims) == [Seen.NEW, Seen.NEW, Seen.REPEAT, Seen.CONFLICT]
    assert await plumbing.claim_inbox([]) == []


# --- outbox -----------------------------------------------------------------------


async def test_outbox_rows_are_read_in_the_order_written_until_marked_sent(plumbing):
    events = [stopped("p1"), stopped("p2"), stopped("p1")]
    await plumbing.enqueue(events[:2])
    await plumbing.enqueue(events[2:])
    rows = await plumbing.unsent(10)
    assert [json.loads(r.value)["id"] for r in rows] == [e["id"] for e in events]
    assert {(r.topic, r.key) for r in rows} == {
        (CLINICAL_EVENTS.name, "p1"),
        (CLINICAL_EVENTS.name, "p2"),
    }
    assert [r.id for r in await plumbing.unsent(2)] == [r.id for r in rows[:2]]
    await plumbing.mark_sent([rows[0].id])
    assert [r.id for r in await plumbing.unsent(10)] == [r.id for r in rows[1:]]
    await plumbing.mark_sent([r.id for r in rows[1:]])
    assert await plumbing.unsent(10) == []
    await plumbing.mark_sent([])  # nothing to stamp is no error


# --- timers -----------------------------------------------------------------------


async def test_timers_set_replace_cancel(plumbing):
    await plumbing.set_timers([timer("p1", "a", NOW), timer("p1", "b", NOW, n=1)])
    await plumbing.set_timers([timer("p1", "b", NOW + timedelta(hours=1), n=2)])  # replaces
    await plumbing.cancel_timers([("p1", "a"), ("p1", "never-set")])
    assert await plumbing.claim_due_timers(NOW, ["p1"]) == []
    [due] = await plumbing.claim_due_timers(NOW + timedelta(hours=1), ["p1"])
    assert (due.key, due.payload) == ("b", {"n": 2})


async def test_timers_due_oldest_first_for_the_patients_asked(plumbing):
    await plumbing.set_timers(
        [
            timer("p2", "x", NOW - timedelta(minutes=1)),
            timer("p1", "y", NOW),
            timer("p1", "x", NOW - timedelta(minutes=2)),
            timer("p3", "x", NOW + timedelta(seconds=1)),
        ]
    )
    assert await plumbing.due_patients(NOW, 10) == (["p1", "p2"], False)
    assert await plumbing.due_patients(NOW, 2) == (["p1", "p2"], True)  # may be more
    due = await plumbing.claim_due_timers(NOW, ["p1", "p2", "p3"])
    assert [(t.patient_id, t.key) for t in due] == [("p1", "x"), ("p2", "x"), ("p1", "y")]
    assert [t.key for t in await plumbing.claim_due_timers(NOW, ["p2"])] == ["x"]


async def test_timers_before_an_input_only_those_strictly_earlier_fire(plumbing):
    """DESIGN.md §4.3 r2: an input stamped exactly at a deadline is on time."""
    await plumbing.set_timers(
        [timer("p1", "at", NOW), timer("p1", "before", NOW - timedelta(microseconds=1))]
    )
    early = await plumbing.claim_due_timers(NOW, ["p1"], before_input=True)
    assert [t.key for t in early] == ["before"]
    assert [t.key for t in await plumbing.claim_due_timers(NOW, ["p1"])] == ["before", "at"]


async def test_a_fired_timer_is_gone_once_cancelled_in_its_unit(plumbing):
    await plumbing.set_timers([timer("p1", "a", NOW)])
    [due] = await plumbing.claim_due_timers(NOW, ["p1"])
    await plumbing.cancel_timers([(due.patient_id, due.key)])
    assert await plumbing.due_patients(NOW, 10) == ([], False)


# --- dead letters -----------------------------------------------------------------


def letter(raw: bytes, offset: int = 7):
    return dead_letter(
        "sink", CLINICAL_EVENTS.name, 0, offset, b"p1", raw, "bad", "data.dose_mg", NOW
    )


async def test_a_dead_letter_is_kept_whole_and_announced_once(plumbing):
    raw = b'{"dose_mg": "fifty"}'
    assert await plumbing.store_letter(letter(raw), b"p1", raw) is True
    assert await plumbing.store_letter(letter(raw), b"p1", raw) is False  # redelivered
    [kept] = await plumbing.letters()
    assert (kept.reason, kept.field, kept.original_key, kept.original) == (
        "bad",
        "data.dose_mg",
        b"p1",
        raw,
    )
    [announced] = await plumbing.unsent(10)
    assert (announced.topic, announced.key) == (DLQ.name, "p1")
    assert json.loads(announced.value)["id"] == kept.id


async def test_a_tombstone_is_dead_lettered_with_no_original(plumbing):
    assert await plumbing.store_letter(letter(None, offset=8), b"p1", None) is True  # type: ignore[arg-type]
    [kept] = await plumbing.letters()
    assert kept.original is None


# --- the unit's edges ---------------------------------------------------------------


async def test_a_failed_savepoint_undoes_only_what_it_did(plumbing):
    await plumbing.set_timers([timer("p1", "kept", NOW)])
    with pytest.raises(RuntimeError):
        async with plumbing.savepoint():
            await plumbing.set_timers([timer("p1", "undone", NOW)])
            await plumbing.enqueue([stopped("p1")])
            assert await plumbing.claim_inbox([("hs", "1", "a")]) == [Seen.NEW]
            raise RuntimeError("a defect")
    assert [t.key for t in await plumbing.claim_due_timers(NOW, ["p1"])] == ["kept"]
    assert await plumbing.unsent(10) == []
    assert await plumbing.claim_inbox([("hs", "1", "a")]) == [Seen.NEW]


async def test_a_free_patient_lock_is_taken(plumbing):
    async with plumbing.savepoint():
        await plumbing.lock_patients(["p1", "p2"])
        assert await plumbing.try_lock_patients(["p3"]) == {"p3"}
