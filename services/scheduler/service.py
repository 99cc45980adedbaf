"""Scheduler worker: keeps each patient's plan state, materialises due items a rolling
horizon ahead, and emits each one at its due time through the outbox, exactly once.

Durability: a due item's ``emitted_at`` and its outbox row commit together, so a
kill -9 at any point re-emits nothing and loses nothing; items missed while the
service was down are emitted on restart and marked late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from services.scheduler.domain import (
    PlanState,
    apply_injection,
    apply_procedure,
    apply_stop,
    due_items,
    new_state,
    schedule_ends,
)
from shared.envelope import Event, stable_id
from shared.events import IntakeDecided
from shared.localtime import local_midnight_utc
from shared.runtime import Context, Runtime, ServiceSpec, each
from shared.topics import CLINICAL_EVENTS, INTAKE_DECISIONS

#: An item emitted this long after its due time is marked late (downtime catch-up).
LATE_AFTER = timedelta(minutes=5)
#: Plans whose horizon is extended per transaction.
EXTEND_BATCH = 500


#: What each input does to a plan; every other type on the scheduler's topics
#: (deferrals, doses, results) changes no schedule.
UPDATES = {
    "ntx.procedure.scheduled.v1": apply_procedure,
    "ntx.injection.administered.v1": apply_injection,
    "ntx.treatment.stopped.v1": apply_stop,
}
CREATES = "ntx.intake.accepted.v1"


async def handle(ctx: Context, event: Event) -> None:
    if event.type == CREATES:
        await _create_plan(ctx, event)
        return
    apply = UPDATES[event.type]
    await _update_plan(ctx, event.patient_id, lambda state: apply(state, event.data))


async def _create_plan(ctx: Context, event: Event) -> None:
    decided = event.data
    assert isinstance(decided, IntakeDecided) and decided.plan is not None
    state = new_state(decided.plan)
    start = local_midnight_utc(decided.plan.start_date, decided.plan.timezone)
    assert ctx.settings is not None
    until = max(ctx.now, start) + timedelta(hours=ctx.settings.schedule_horizon_hours)
    await ctx.conn.execute(
        "INSERT INTO plans (patient_id, state, active, horizon_until, updated_at)"
        " VALUES ($1, $2::text::jsonb, true, $3, $4) ON CONFLICT (patient_id) DO UPDATE SET"
        " state = EXCLUDED.state, active = true, horizon_until = EXCLUDED.horizon_until,"
        " updated_at = EXCLUDED.updated_at",
        decided.patient_id,
        state.model_dump_json(),
        until,
        ctx.now,
    )
    await ctx.conn.execute(
        "DELETE FROM due_items WHERE patient_id = $1 AND emitted_at IS NULL", decided.patient_id
    )
    ctx.emit(
        "ntx.plan.created.v1",
        decided.plan,
        id_=stable_id("plan", event.envelope.source, event.envelope.id),
    )
    await insert_items(ctx.conn, item_rows(decided.patient_id, state, start, until))


async def _update_plan(ctx: Context, patient_id: str, change) -> None:  # type: ignore[no-untyped-def]
    row = await ctx.conn.fetchrow(
        "SELECT state::text AS state, horizon_until FROM plans WHERE patient_id = $1 FOR UPDATE",
        patient_id,
    )
    if row is None:
        return  # no plan: nothing to reschedule (alerts still records the event)
    state = change(PlanState.model_validate_json(row["state"]))
    await ctx.conn.execute(
        "UPDATE plans SET state = $2::text::jsonb, active = true, updated_at = $3"
        " WHERE patient_id = $1",
        patient_id,
        state.model_dump_json(),
        ctx.now,
    )
    await ctx.conn.execute(
        "DELETE FROM due_items WHERE patient_id = $1 AND emitted_at IS NULL AND due_at >= $2",
        patient_id,
        ctx.now,
    )
    await insert_items(ctx.conn, item_rows(patient_id, state, ctx.now, row["horizon_until"]))


def item_rows(
    patient_id: str, state: PlanState, start: datetime, end: datetime
) -> list[tuple[str, str, str, datetime, str]]:
    """``due_items`` rows for ``[start, end)``; data as validated event JSON."""
    return [
        (patient_id, i.key, i.type, i.due_utc, i.to_data(patient_id).model_dump_json())
        for i in due_items(state, start, end)
    ]


async def insert_items(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    await conn.execute(
        "INSERT INTO due_items (patient_id, key, type, due_at, data)"
        " SELECT p, k, t, d, j::jsonb"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])"
        " AS r(p, k, t, d, j) ON CONFLICT (patient_id, key) DO NOTHING",
        *map(list, columns),
    )


# --- background loops -------------------------------------------------------------


async def extend_horizons(runtime: Runtime) -> None:
    await runtime.run_loop(lambda: _extend_batch(runtime), 0.5)


async def _extend_batch(runtime: Runtime) -> int:
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
            state = PlanState.model_validate_json(row["state"])
            items.extend(item_rows(row["patient_id"], state, row["horizon_until"], until))
            ends = schedule_ends(state)
            horizons.append((row["patient_id"], until, ends is None or until < ends))
        await insert_items(conn, items)
        await conn.executemany(
            "UPDATE plans SET horizon_until = $2, active = $3 WHERE patient_id = $1", horizons
        )
    return len(rows)


async def emit_due(runtime: Runtime) -> None:
    await runtime.run_loop(lambda: _emit_batch(runtime), runtime.settings.timer_poll_s)


async def _emit_batch(runtime: Runtime) -> int:
    """Claim due items (SKIP LOCKED, so workers share them), stamp them emitted and
    queue their events in the same transaction: each is emitted once."""
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn:
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM due_items WHERE emitted_at IS NULL AND due_at <= $1)",
            runtime.clock.now(),
        ):
            return 0
    async with runtime.pool.acquire() as conn, conn.transaction():
        now = runtime.clock.now()
        rows = await conn.fetch(
            "UPDATE due_items d SET emitted_at = $1, late = $1 - d.due_at > $3"
            " FROM (SELECT patient_id, key FROM due_items WHERE emitted_at IS NULL AND due_at <= $1"
            "       ORDER BY due_at, patient_id, key LIMIT $2 FOR UPDATE SKIP LOCKED) c"
            " WHERE d.patient_id = c.patient_id AND d.key = c.key"
            " RETURNING d.patient_id, d.key, d.type, d.due_at, d.data",
            now,
            runtime.settings.timer_batch,
            LATE_AFTER,
        )
        ctx = runtime.context(conn, now)
        for r in sorted(rows, key=lambda r: (r["due_at"], r["patient_id"], r["key"])):
            # data was validated against the type's model when the item was materialised
            ctx.emit(
                r["type"], r["data"], id_=stable_id("due", r["patient_id"], r["key"], r["type"])
            )
        await ctx.flush()
    if rows:
        runtime.wake_relay()
    return len(rows)


SPEC = ServiceSpec(
    name="scheduler",
    topics=(INTAKE_DECISIONS, CLINICAL_EVENTS),
    migrations=Path(__file__).parent / "migrations",
    handle=each(handle),
    handles=frozenset({CREATES, *UPDATES}),
    loops=(extend_horizons, emit_due),
)
