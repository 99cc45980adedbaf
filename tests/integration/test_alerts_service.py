"""Alerts worker on the real broker and database with a simulated clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.alerts.service import SPEC
from shared import db
from shared.clock import SimulatedClock
from shared.envelope import build
from shared.runtime import Runtime
from shared.topics import ALERTS, NOTIFICATIONS
from tests.integration.builders import event, plan, send
from tests.integration.harness import (
    Harness,
    eventually,
    patient_messages,
    settings_for,
)

pytestmark = pytest.mark.infra

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 New York


def plan_created(patient: str, **consent) -> dict:
    p = plan(patient, date(2026, 3, 2), consent={"notify_patient": True, **consent})
    return build("ntx.plan.created.v1", p, source="ntx/scheduler", time=T0)


def dose_due(patient: str) -> dict:
    return event(
        "ntx.dose.due.v1",
        T0,  # emitted ahead of its due time: never stamped after the receiving clock
        patient_id=patient,
        due_utc=DUE.isoformat(),
        due_local="2026-03-02T09:00",
        dose_mg=25,
    )


async def on_topic(infra, topic: str, patient: str, n: int) -> list[dict]:
    return await patient_messages(infra.bootstrap, topic, patient, n)


async def audit(infra, schema: str, patient: str) -> list:
    conn = await db.connect(infra.database_url, schema)
    try:
        return await conn.fetch(
            "SELECT type, alert, detail FROM alert_audit WHERE patient_id = $1 ORDER BY id", patient
        )
    finally:
        await conn.close()


async def test_missed_dose_raises_alert_and_notifications_once(infra, unique):
    patient, schema = f"miss-{unique}", f"alerts_{unique}"
    clock = SimulatedClock(T0)
    due = dose_due(patient)
    async with Harness(SPEC, infra, schema, clock=clock) as h:
        await send(infra.bootstrap, plan_created(patient))
        await send(infra.bootstrap, due)
        await send(infra.bootstrap, due)  # duplicate delivery
        assert await eventually(lambda: _settled(h, patient, 3))
        clock.set(DUE + timedelta(hours=12))
        alerts = await on_topic(infra, ALERTS.name, patient, 1)
        notes = await on_topic(infra, NOTIFICATIONS.name, patient, 2)
        rows = await audit(infra, schema, patient)
    assert h.outcomes_for(patient) == ["handled", "handled", "repeat"]
    assert [(a["type"], a["data"]["alert"]) for a in alerts] == [
        ("ntx.alert.raised.v1", "missed_dose")
    ]
    assert sorted(n["data"]["audience"] for n in notes) == ["care_team", "patient"]
    assert [r["type"] for r in rows].count("ntx.alert.raised.v1") == 1


async def test_crash_after_deadline_fired_before_publication_publishes_once(infra, unique):
    """The deadline's state change and its outbox rows commit together: a worker that
    dies before the relay runs loses nothing, and its successor sends each event once."""
    patient, schema = f"crash-{unique}", f"alerts_{unique}"
    clock = SimulatedClock(T0)
    async with Harness(SPEC, infra, schema, clock=clock) as h:
        await send(infra.bootstrap, plan_created(patient))
        await send(infra.bootstrap, dose_due(patient))
        assert await eventually(lambda: _settled(h, patient, 2))
    crashed = Runtime(SPEC, settings_for(infra), clock, schema=schema)
    await crashed.start()
    crashed.loops["relay"].step = _never  # the process dies before its relay publishes
    clock.set(DUE + timedelta(hours=12))
    assert await eventually(lambda: _fired(infra, schema, patient))
    await crashed.stop()
    assert await _unsent(infra, schema, patient) == 3  # raised + care team + patient
    successor = Runtime(SPEC, settings_for(infra), clock, schema=schema)
    await successor.start()
    try:
        alerts = await on_topic(infra, ALERTS.name, patient, 1)
        assert await eventually(lambda: _none_unsent(infra, schema, patient))
    finally:
        await successor.stop()
    rows = await audit(infra, schema, patient)
    assert [r["type"] for r in rows].count("ntx.alert.raised.v1") == 1
    assert [a["data"]["alert"] for a in alerts] == ["missed_dose"]


async def test_a_deadline_already_due_fires_before_the_input_that_follows_it(infra, unique):
    """The timer loop is a poll behind (here: an hour): the blockade lapsed before the
    next dose was recorded, so the lapse is raised, then resolved by that dose; it is
    not lost because the dose was handled first."""
    patient, schema = f"order-{unique}", f"alerts_{unique}"
    clock = SimulatedClock(T0)
    given = DUE + timedelta(minutes=5)
    async with Harness(SPEC, infra, schema, clock=clock, timer_poll_s=3600) as h:
        await send(infra.bootstrap, plan_created(patient))
        await send(infra.bootstrap, dose_due(patient))
        # the plan first: a dose recorded before the plan is known starts no coverage
        assert await eventually(lambda: _settled(h, patient, 2))
        clock.set(given)
        await send(infra.bootstrap, administered(patient, given))
        assert await eventually(lambda: _settled(h, patient, 3))
        later = given + timedelta(hours=24 + 48, minutes=30)  # coverage 24 h, lapse 48 h after
        clock.set(later)
        await send(infra.bootstrap, administered(patient, later))
        alerts = await on_topic(infra, ALERTS.name, patient, 2)
    assert [(a["type"], a["data"]["reason"]) for a in alerts] == [
        ("ntx.alert.raised.v1", "blockade_lapsed"),
        ("ntx.alert.resolved.v1", "blockade_lapsed"),
    ]


async def test_an_input_at_the_deadline_instant_is_applied_before_the_deadline(infra, unique):
    """DESIGN.md §4.3 r2: on time means at or before. The dose is recorded exactly at
    the missed-dose deadline: the worker applies it first, as replay does, so no
    alert; the deadline, fired later, finds its due settled."""
    patient, schema = f"instant-{unique}", f"alerts_{unique}"
    clock = SimulatedClock(T0)
    deadline = DUE + timedelta(hours=12)
    async with Harness(SPEC, infra, schema, clock=clock, timer_poll_s=3600) as h:
        await send(infra.bootstrap, plan_created(patient))
        await send(infra.bootstrap, dose_due(patient))
        assert await eventually(lambda: _settled(h, patient, 2))
        clock.set(deadline)
        await send(infra.bootstrap, administered(patient, deadline))
        assert await eventually(lambda: _settled(h, patient, 3))
        clock.set(deadline + timedelta(minutes=1))
        await h.runtime.fire_due_timers()
        rows = await audit(infra, schema, patient)
    assert rows == []


async def test_an_unknown_patient_is_adopted_and_counted(infra, unique):
    """DESIGN.md §4.3 r2: a due for a patient whose plan this service never saw is
    not dropped: the patient is adopted (care team only) and counted in a metric."""
    from services.alerts.service import ADOPTED

    patient, schema = f"adopt-{unique}", f"alerts_{unique}"
    clock = SimulatedClock(T0)
    before = ADOPTED._value.get()
    async with Harness(SPEC, infra, schema, clock=clock) as h:
        await send(infra.bootstrap, dose_due(patient))
        assert await eventually(lambda: _settled(h, patient, 1))
        clock.set(DUE + timedelta(hours=12))
        alerts = await on_topic(infra, ALERTS.name, patient, 1)
        notes = await on_topic(infra, NOTIFICATIONS.name, patient, 1)
    assert [(a["type"], a["data"]["alert"]) for a in alerts] == [
        ("ntx.alert.raised.v1", "missed_dose")
    ]
    assert [n["data"]["audience"] for n in notes] == ["care_team"]
    # at least this one: a fresh schema reads the topics from their start, where other
    # tests may have left patients this service adopts too
    assert ADOPTED._value.get() >= before + 1


def administered(patient: str, at: datetime) -> dict:
    return event("ntx.dose.administered.v1", at, patient_id=patient, administered_at=at, dose_mg=50)


async def _never() -> int:
    return 0


async def _query(infra, schema: str, sql: str, *args):
    conn = await db.connect(infra.database_url, schema)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _fired(infra, schema: str, patient: str) -> bool:
    left = "SELECT count(*) FROM timers WHERE patient_id = $1 AND kind = 'missed_dose'"
    return await _query(infra, schema, left, patient) == 0


async def _unsent(infra, schema: str, patient: str) -> int:
    return await _query(
        infra, schema, "SELECT count(*) FROM outbox WHERE key = $1 AND sent_at IS NULL", patient
    )


async def _none_unsent(infra, schema: str, patient: str) -> bool:
    return await _unsent(infra, schema, patient) == 0


async def _settled(h: Harness, patient: str, n: int) -> bool:
    return len(h.outcomes_for(patient)) >= n
