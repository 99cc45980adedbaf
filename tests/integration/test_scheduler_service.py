"""Scheduler worker on the real broker and database with a simulated clock: due
events in order, two workers without duplicates, catch-up after downtime."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from services.scheduler.service import SPEC
from shared import db
from shared.clock import SimulatedClock
from shared.runtime import Runtime
from shared.topics import SCHEDULE
from tests.integration.builders import accepted, event, plan, send
from tests.integration.harness import (
    Harness,
    eventually,
    patient_messages,
    settings_for,
)

pytestmark = pytest.mark.infra

START = date(2026, 3, 2)
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 07:00 New York, before the 09:00 dose


async def schedule_events(infra, patient: str, n: int) -> list[dict]:
    return await patient_messages(infra.bootstrap, SCHEDULE.name, patient, n)


async def due_rows(infra, schema: str, patient: str) -> list:
    conn = await db.connect(infra.database_url, schema)
    try:
        return await conn.fetch(
            "SELECT key, type, due_at, emitted_at, late FROM due_items WHERE patient_id = $1 ORDER BY due_at, key",
            patient,
        )
    finally:
        await conn.close()


async def test_plan_produces_due_events_in_time_order(infra, unique):
    patient = f"ord-{unique}"
    clock = SimulatedClock(T0)
    async with Harness(SPEC, infra, f"sched_{unique}", clock=clock) as h:
        await send(infra.bootstrap, accepted(plan(patient, START), T0))
        assert await eventually(lambda: _settled(h, patient))
        for day in range(1, 4):
            clock.set(T0 + timedelta(days=day))
            await eventually(lambda: _emitted_up_to(infra, f"sched_{unique}", patient, clock.now()))
        events = await schedule_events(infra, patient, 4)
    types = [e["type"] for e in events]
    assert types[0] == "ntx.plan.created.v1"
    doses = [e["data"] for e in events if e["type"] == "ntx.dose.due.v1"]
    assert [d["due_local"] for d in doses] == [
        "2026-03-02T09:00",
        "2026-03-03T09:00",
        "2026-03-04T09:00",
    ]
    assert [d["dose_mg"] for d in doses][:2] == [25, 50]
    assert [d["due_utc"] for d in doses][:1] == ["2026-03-02T14:00:00Z"]
    times = [e["time"] for e in events[1:]]
    assert times == sorted(times)


async def test_two_workers_share_due_items_without_duplicates(infra, unique):
    schema = f"sched_{unique}"
    patients = [f"two-{unique}-{i}" for i in range(20)]
    clock = SimulatedClock(T0)
    async with Harness(SPEC, infra, schema, clock=clock) as h:
        second = Runtime(SPEC, settings_for(infra), clock, schema=schema)
        await second.start()
        try:
            for p in patients:
                await send(infra.bootstrap, accepted(plan(p, START), T0))
            assert await eventually(lambda: _all_settled(h, patients))
            clock.set(T0 + timedelta(days=2))
            for p in patients:
                assert await eventually(lambda p=p: _emitted_up_to(infra, schema, p, clock.now()))
        finally:
            await second.stop()
    conn = await db.connect(infra.database_url, schema)
    try:
        outbox_ids = await conn.fetch("SELECT value FROM outbox WHERE topic = $1", SCHEDULE.name)
    finally:
        await conn.close()
    ids = [json.loads(r["value"])["id"] for r in outbox_ids]
    assert len(ids) == len(set(ids))
    # the shared topic also carries earlier tests' plans: count this test's patients
    dose_events = [
        v
        for v in map(lambda r: json.loads(r["value"]), outbox_ids)
        if v["type"] == "ntx.dose.due.v1" and v["subject"] in patients
    ]
    assert len(dose_events) == 2 * len(patients)  # 2 and 3 March 09:00 New York; 4 March is later


async def test_items_missed_during_downtime_are_emitted_late(infra, unique):
    schema = f"sched_{unique}"
    patient = f"late-{unique}"
    clock = SimulatedClock(T0)
    async with Harness(SPEC, infra, schema, clock=clock) as h:
        await send(infra.bootstrap, accepted(plan(patient, START), T0))
        assert await eventually(lambda: _settled(h, patient))
    clock.set(T0 + timedelta(days=1, hours=6))  # down across two 09:00 doses
    runtime = Runtime(SPEC, settings_for(infra), clock, schema=schema)
    await runtime.start()
    try:
        assert await eventually(lambda: _emitted_up_to(infra, schema, patient, clock.now()))
    finally:
        await runtime.stop()
    rows = [r for r in await due_rows(infra, schema, patient) if r["emitted_at"] is not None]
    doses = [r for r in rows if r["type"] == "ntx.dose.due.v1"]
    assert len(doses) == 2 and all(r["late"] for r in doses)


async def test_a_procedure_reported_after_its_day_emits_reinduction_at_once(infra, unique):
    """DESIGN.md §4.2 r2: an emergency reported two days later: what remains is held
    (nothing), and reinduction.required comes at once since P+1 has begun."""
    schema, patient = f"sched_{unique}", f"proc-{unique}"
    clock = SimulatedClock(T0)
    async with Harness(SPEC, infra, schema, clock=clock) as h:
        await send(infra.bootstrap, accepted(plan(patient, START), T0))
        assert await eventually(lambda: _settled(h, patient))
        reported = T0 + timedelta(days=3)  # 5 March; the operation was on the 3rd
        clock.set(reported)
        await eventually(lambda: _emitted_up_to(infra, schema, patient, clock.now()))
        notice = event(
            "ntx.procedure.scheduled.v1",
            reported,
            patient_id=patient,
            date="2026-03-03",
            requires_opioid_analgesia=True,
        )
        await send(infra.bootstrap, notice)
        events = await patient_messages(
            infra.bootstrap,
            SCHEDULE.name,
            patient,
            1 + 4 + 1,  # the plan, four doses due (2-5 March), the notice
        )
    notices = [e for e in events if e["type"] == "ntx.reinduction.required.v1"]
    assert [(n["data"]["due_local"], n["time"]) for n in notices] == [
        ("2026-03-04", "2026-03-05T12:00:00Z")
    ]
    assert not [r for r in await due_rows(infra, schema, patient) if r["emitted_at"] is None]


async def test_a_raised_liver_result_makes_the_schedule_monthly(infra, unique):
    """The scheduler acts on lab results (DESIGN.md §4.2 r2)."""
    schema, patient = f"sched_{unique}", f"lft-{unique}"
    clock = SimulatedClock(T0)
    async with Harness(SPEC, infra, schema, clock=clock) as h:
        await send(infra.bootstrap, accepted(plan(patient, START), T0))
        # the plan first: the two topics are not ordered with each other, and a result
        # for a patient without a plan changes no schedule
        assert await eventually(lambda: _count(h, patient, 1))
        result = event(
            "ntx.lab.resulted.v1",
            T0,
            patient_id=patient,
            collected_at=T0,
            alt="120.3",
            ast=20,
            alt_uln="40.1",
            ast_uln=40,
        )
        await send(infra.bootstrap, result)
        assert await eventually(lambda: _count(h, patient, 2))
    conn = await db.connect(infra.database_url, schema)
    try:
        state = await conn.fetchval(
            "SELECT state->>'lft_monthly_from' FROM plans WHERE patient_id = $1", patient
        )
    finally:
        await conn.close()
    assert h.outcomes_for(patient) == ["handled", "handled"]
    assert state == "2026-03-02"


async def _count(h: Harness, patient: str, n: int) -> bool:
    return len(h.outcomes_for(patient)) >= n


async def _settled(h: Harness, patient: str) -> bool:
    return bool(h.outcomes_for(patient))


async def _all_settled(h: Harness, patients: list[str]) -> bool:
    return all(h.outcomes_for(p) for p in patients)


async def _emitted_up_to(infra, schema: str, patient: str, now: datetime) -> bool:
    rows = await due_rows(infra, schema, patient)
    due = [r for r in rows if r["due_at"] <= now]
    return bool(due) and all(r["emitted_at"] is not None for r in due)
