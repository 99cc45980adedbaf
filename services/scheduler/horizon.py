"""The rolling horizon: due items materialised a stretch ahead of "now" (never a year
of rows per patient), and emitted at their due time through the outbox, once.

Durability: an item's ``emitted_at`` and its outbox row commit together, so a kill -9
at any point re-emits nothing and loses nothing; items that fell due while the service
was down are emitted when it returns, and marked late.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from pydantic import BaseModel

from services.scheduler.domain import DueItem, PlanState, due_items, schedule_ends
from services.scheduler.repository import Item, Plans, any_item_due, prune_emitted_items
from shared.envelope import stable_id
from shared.runtime import Runtime
from shared.topics import event_type
from shared.unit_of_work import UnitOfWork

#: An item emitted this long after its due time is marked late (downtime catch-up).
LATE_AFTER = timedelta(minutes=5)
#: Plans whose horizon is extended per transaction.
EXTEND_BATCH = 500
#: How often plans are checked for a horizon running short.
EXTEND_EVERY_S = 0.5
#: Emitted items are kept this long (on the service's clock), then pruned in chunks.
EMITTED_KEPT_FOR = timedelta(days=7)


def item_rows(patient_id: str, state: PlanState, start: datetime, end: datetime) -> list[Item]:
    """The due items of ``[start, end)``; data as validated event JSON."""
    return [
        Item(patient_id, i.key, i.type, i.due_utc, event_data(i, patient_id).model_dump_json())
        for i in due_items(state, start, end)
    ]


def event_data(item: DueItem, patient_id: str) -> BaseModel:
    """The event data of the item's type (fields the type does not carry are left out)."""
    model = event_type(item.type).model
    fields = {
        "patient_id": patient_id,
        "due_local": item.due_local,
        "due_utc": item.due_utc,
        "dose_mg": item.dose_mg,
        "test": item.test,
        "reason": item.reason,
        "requires_uds": item.requires_uds,
    }
    return model.model_validate(
        {k: v for k, v in fields.items() if k in model.model_fields and v is not None}
    )


async def extend_horizons(runtime: Runtime) -> int:
    """Materialise the next stretch for plans whose horizon runs short, a batch of
    plans per transaction; a plan with nothing left to fall due goes inactive."""
    hours = runtime.settings.schedule_horizon_hours
    async with runtime.unit_of_work(runtime.clock.now()) as uow:
        return await extend(uow, hours)


async def extend(uow: UnitOfWork[Plans], hours: float) -> int:
    until = uow.now + timedelta(hours=hours)
    plans = await uow.repos.running_short(uow.now + timedelta(hours=hours / 2), EXTEND_BATCH)
    items, horizons = [], []
    for pid, plan in plans.items():
        items.extend(item_rows(pid, plan.state, plan.horizon_until, until))
        ends = schedule_ends(plan.state)
        horizons.append((pid, until, ends is None or until < ends))
    await uow.repos.add_items(items)
    await uow.repos.extend(horizons)
    return len(plans)


async def prune_emitted(runtime: Runtime) -> int:
    """Keeps ``due_items`` the size of the horizon plus a week, not of all history."""
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn:
        await prune_emitted_items(conn, runtime.clock.now() - EMITTED_KEPT_FOR)
    return 0


async def emit_due(runtime: Runtime) -> int:
    """Claim due items (SKIP LOCKED, so workers share them), stamp them emitted and
    queue their events in the same transaction: each is emitted once. One round sees
    one "now"."""
    assert runtime.pool is not None
    now = runtime.clock.now()
    async with runtime.pool.acquire() as conn:
        if not await any_item_due(conn, now):
            return 0
    async with runtime.unit_of_work(now) as uow:
        emitted = await emit(uow, runtime.settings.timer_batch)
    if emitted:
        runtime.wake_relay()
    return emitted


async def emit(uow: UnitOfWork[Plans], limit: int) -> int:
    """Emit up to ``limit`` items due at the unit's ``now``, oldest first."""
    items = await uow.repos.claim_due(uow.now, limit, LATE_AFTER)
    for i in items:
        # data was validated against the type's model when the item was materialised
        uow.emit(i.type, json.loads(i.data), id_=stable_id("due", i.patient_id, i.key, i.type))
    return len(items)
