"""The scheduler's handlers on the in-memory unit of work: a plan materialises its
horizon, an input re-materialises it from "now" (what was emitted stays emitted),
due items are emitted once, late ones marked, and the horizon moves on. No broker,
no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.scheduler.horizon import LATE_AFTER, emit, extend
from services.scheduler.repository import MemoryPlans
from services.scheduler.service import SPEC
from tests.integration.builders import accepted, event, plan
from tests.unit.in_memory import InMemoryService

START = date(2026, 3, 2)
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 07:00 New York, before the 09:00 dose
HOURS = 48


@pytest.fixture
def scheduler() -> InMemoryService:
    return InMemoryService(SPEC, MemoryPlans)


def pending(service: InMemoryService, patient: str) -> list[tuple[str, datetime]]:
    """The patient's items not yet emitted: (type, due_at), in due order."""
    rows = service.table("due_items").values()
    items = [i for i, emitted_at, _ in rows if i.patient_id == patient and emitted_at is None]
    return [(i.type, i.due_at) for i in sorted(items, key=lambda i: (i.due_at, i.key))]


def emitted_items(service: InMemoryService, patient: str) -> list[tuple[str, datetime, bool]]:
    """The patient's emitted items: (type, emitted_at, late), in due order."""
    rows = [r for r in service.table("due_items").values() if r[0].patient_id == patient]
    rows.sort(key=lambda r: (r[0].due_at, r[0].key))
    return [(i.type, emitted_at, late) for i, emitted_at, late in rows if emitted_at]


async def emit_at(service: InMemoryService, now: datetime) -> list[dict]:
    async with service.units.begin(now) as uow:
        await emit(uow, 500)
    return await service.published()


async def test_an_accepted_plan_is_announced_and_its_horizon_materialised(scheduler):
    await scheduler.handle(T0, accepted(plan("p1", START), T0))
    [created] = await scheduler.published()
    assert created["type"] == "ntx.plan.created.v1"
    doses = [at for kind, at in pending(scheduler, "p1") if kind == "ntx.dose.due.v1"]
    # 09:00 New York (EST) on the start day and the next; the horizon ends 48 h on
    assert doses == [datetime(2026, 3, 2, 14, tzinfo=UTC), datetime(2026, 3, 3, 14, tzinfo=UTC)]
    [(_, until, active)] = scheduler.table("plans").values()
    assert until == T0 + timedelta(hours=HOURS) and active


async def test_the_same_decision_twice_makes_one_plan(scheduler):
    decision = accepted(plan("p1", START), T0)
    assert await scheduler.handle(T0, decision) == ["new"]
    assert await scheduler.handle(T0, decision) == ["repeat"]
    assert len(await scheduler.published()) == 1


async def test_a_procedure_re_materialises_from_now_and_keeps_what_was_emitted(scheduler):
    """Surgery on 2026-03-05 reported after the first dose went out: the items from
    now on are made again (the 3rd's dose is held: its blockade would last past
    09:00 on P-3), and the dose already emitted stays emitted."""
    await scheduler.handle(T0, accepted(plan("p1", START), T0))
    first_dose = datetime(2026, 3, 2, 14, tzinfo=UTC)
    emitted = await emit_at(scheduler, first_dose)
    assert [e["type"] for e in emitted] == ["ntx.plan.created.v1", "ntx.dose.due.v1"]
    later = first_dose + timedelta(hours=1)
    surgery = event(
        "ntx.procedure.scheduled.v1",
        later,
        patient_id="p1",
        date="2026-03-05",
        requires_opioid_analgesia=True,
    )
    await scheduler.handle(later, surgery)
    kinds = pending(scheduler, "p1")
    assert ("ntx.dose.due.v1", datetime(2026, 3, 3, 14, tzinfo=UTC)) not in kinds
    assert ("ntx.dose.held.v1", datetime(2026, 3, 3, 14, tzinfo=UTC)) in kinds
    assert all(at >= later for _, at in kinds)  # nothing re-made before "now"
    assert emitted_items(scheduler, "p1") == [("ntx.dose.due.v1", first_dose, False)]


async def test_an_input_for_a_patient_without_a_plan_changes_nothing(scheduler):
    stop = event(
        "ntx.treatment.stopped.v1", T0, patient_id="p9", stopped_at=T0, reason="patient_choice"
    )
    assert await scheduler.handle(T0, stop) == ["new"]
    assert scheduler.table("plans") == {} and await scheduler.published() == []


async def test_a_stop_drops_every_item_from_now_on(scheduler):
    await scheduler.handle(T0, accepted(plan("p1", START), T0))
    later = T0 + timedelta(hours=1)
    stop = event(
        "ntx.treatment.stopped.v1", later, patient_id="p1", stopped_at=later, reason="other"
    )
    await scheduler.handle(later, stop)
    assert pending(scheduler, "p1") == []


async def test_due_items_are_emitted_once_in_time_order_and_late_ones_marked(scheduler):
    await scheduler.handle(T0, accepted(plan("p1", START), T0))
    await scheduler.published()
    catch_up = datetime(2026, 3, 3, 14, tzinfo=UTC) + LATE_AFTER
    out = await emit_at(scheduler, catch_up)  # a worker back after downtime
    assert [e["data"]["due_local"] for e in out] == ["2026-03-02T09:00", "2026-03-03T09:00"]
    assert await emit_at(scheduler, catch_up) == []
    flags = [late for _, _, late in emitted_items(scheduler, "p1")]
    assert flags == [True, False]  # a day overdue; exactly LATE_AFTER is not late yet


async def test_the_horizon_moves_on_before_it_runs_short(scheduler):
    await scheduler.handle(T0, accepted(plan("p1", START), T0))
    async with scheduler.units.begin(T0 + timedelta(hours=HOURS / 2 - 1)) as uow:
        assert await extend(uow, HOURS) == 0  # more than half the horizon left
    later = T0 + timedelta(hours=HOURS / 2 + 1)
    async with scheduler.units.begin(later) as uow:
        assert await extend(uow, HOURS) == 1
    [(_, until, active)] = scheduler.table("plans").values()
    assert until == later + timedelta(hours=HOURS) and active
    doses = [at for kind, at in pending(scheduler, "p1") if kind == "ntx.dose.due.v1"]
    # materialised up to 2026-03-05 13:00 UTC: the 4th's dose is, the 5th's not yet
    assert doses[-1] == datetime(2026, 3, 4, 14, tzinfo=UTC)
