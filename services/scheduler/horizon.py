"""The rolling horizon: due items materialised a stretch ahead of "now" (never a year
of rows per patient), and emitted at their due time through the outbox, once.

Durability: an item's ``emitted_at`` and its outbox row commit together, so a kill -9
at any point re-emits nothing and loses nothing; items that fell due while the service
was down are emitted when it returns, and marked late.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
from pydantic import BaseModel

from services.scheduler.domain import DueItem, PlanState, due_items, schedule_ends
from services.scheduler.domain.state import STORED as PLAN_STATE
from shared.envelope import stable_id
from shared.housekeeping import delete_in_chunks
from shared.runtime import Runtime
from shared.topics import event_type

#: An item emitted this long after its due time is marked late (downtime catch-up).
LATE_AFTER = timedelta(minutes=5)
#: Plans whose horizon is extended per transaction.
EXTEND_BATCH = 500
#: How often plans are checked for a horizon running short.
EXTEND_EVERY_S = 0.5
#: Emitted items are kept this long (on the service's clock), then pruned in chunks.
EMITTED_KEPT_FOR = timedelta(days=7)


def item_rows(
    patient_id: str, state: PlanState, start: datetime, end: datetime
) -> list[tuple[str, str, str, datetime, str]]:
    """``due_items`` rows for ``[start, end)``; data as validated event JSON."""
    return [
        (patient_id, i.key, i.type, i.due_utc, event_data(i, patient_id).model_dump_json())
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


async def insert_items(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    if not rows:
        return
    await conn.execute(
        "INSERT INTO due_items (patient_id, key, type, due_at, data)"
        " SELECT p, k, t, d, j::jsonb"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])"
        " AS r(p, k, t, d, j) ON CONFLICT (patient_id, key) DO NOTHING",
        *map(list, zip(*rows, strict=True)),
    )


async def extend_horizons(runtime: Runtime) -> int:
    """Materialise the next stretch for plans whose horizon runs short, a batch of
    plans per transaction; a plan with nothing left to fall due goes inactive."""
    hours = runtime.settings.schedule_horizon_hours
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn, conn.transaction():
        now = runtime.clock.now()
        until = now + timedelta(hours=hours)
        rows = await conn.fetch(
            "SELECT patient_id, state::text AS state, horizon_until FROM plans"
            " WHERE active AND horizon_until < $1"
            " ORDER BY horizon_until LIMIT $2 FOR UPDATE SKIP LOCKED",
            now + timedelta(hours=hours / 2),
            EXTEND_BATCH,
        )
        items, horizons = [], []
        for row in rows:
            state = PLAN_STATE.load(row["state"])
            items.extend(item_rows(row["patient_id"], state, row["horizon_until"], until))
            ends = schedule_ends(state)
            horizons.append((row["patient_id"], until, ends is None or until < ends))
        await insert_items(conn, items)
        if horizons:
            await conn.execute(
                "UPDATE plans p SET horizon_until = r.h, active = r.a"
                " FROM unnest($1::text[], $2::timestamptz[], $3::bool[]) AS r(id, h, a)"
                " WHERE p.patient_id = r.id",
                *map(list, zip(*horizons, strict=True)),
            )
    return len(rows)


async def prune_emitted(runtime: Runtime) -> int:
    """Keeps ``due_items`` the size of the horizon plus a week, not of all history."""
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn:
        await delete_in_chunks(
            conn, "due_items", "emitted_at < $1", runtime.clock.now() - EMITTED_KEPT_FOR
        )
    return 0


async def emit_due(runtime: Runtime) -> int:
    """Claim due items (SKIP LOCKED, so workers share them), stamp them emitted and
    queue their events in the same transaction: each is emitted once. One round sees
    one "now"."""
    assert runtime.pool is not None
    now = runtime.clock.now()
    async with runtime.pool.acquire() as conn:
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM due_items WHERE emitted_at IS NULL AND due_at <= $1)",
            now,
        ):
            return 0
    async with runtime.unit_of_work(now) as uow:
        rows = await uow.conn.fetch(
            "UPDATE due_items d SET emitted_at = $1, late = $1 - d.due_at > $3"
            " FROM (SELECT patient_id, key FROM due_items WHERE emitted_at IS NULL AND due_at <= $1"
            "       ORDER BY due_at, patient_id, key LIMIT $2 FOR UPDATE SKIP LOCKED) c"
            " WHERE d.patient_id = c.patient_id AND d.key = c.key"
            " RETURNING d.patient_id, d.key, d.type, d.due_at, d.data",
            now,
            runtime.settings.timer_batch,
            LATE_AFTER,
        )
        for r in sorted(rows, key=lambda r: (r["due_at"], r["patient_id"], r["key"])):
            # data was validated against the type's model when the item was materialised
            uow.emit(
                r["type"], r["data"], id_=stable_id("due", r["patient_id"], r["key"], r["type"])
            )
    if rows:
        runtime.wake_relay()
    return len(rows)
