"""Scheduler worker: keeps each patient's plan state, materialises due items a rolling
horizon ahead, and emits each one at its due time through the outbox, exactly once.

Durability: a due item's ``emitted_at`` and its outbox row commit together, so a
kill -9 at any point re-emits nothing and loses nothing; items missed while the
service was down are emitted on restart and marked late.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from services.scheduler.domain import (
    PlanState,
    apply_injection,
    apply_procedure,
    apply_stop,
    due_items,
    new_state,
)
from shared.envelope import Event, stable_id
from shared.events import IntakeDecided
from shared.localtime import local_midnight_utc
from shared.runtime import Context, Runtime, ServiceSpec
from shared.topics import CLINICAL_EVENTS, INTAKE_DECISIONS, event_type

#: An item emitted this long after its due time is marked late (downtime catch-up).
LATE_AFTER = timedelta(minutes=5)


async def handle(ctx: Context, event: Event) -> None:
    if event.type == "ntx.intake.accepted.v1":
        await _create_plan(ctx, event)
        return
    updates = {
        "ntx.procedure.scheduled.v1": apply_procedure,
        "ntx.injection.administered.v1": apply_injection,
        "ntx.treatment.stopped.v1": apply_stop,
    }
    apply = updates.get(event.type)
    if apply is not None:
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
        " VALUES ($1, $2, true, $3, $4) ON CONFLICT (patient_id) DO UPDATE SET"
        " state = EXCLUDED.state, active = true, horizon_until = EXCLUDED.horizon_until,"
        " updated_at = EXCLUDED.updated_at",
        decided.patient_id,
        state.model_dump(mode="json"),
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
    await _materialise(ctx, decided.patient_id, state, start, until)


async def _update_plan(ctx: Context, patient_id: str, change) -> None:  # type: ignore[no-untyped-def]
    row = await ctx.conn.fetchrow(
        "SELECT state, horizon_until FROM plans WHERE patient_id = $1 FOR UPDATE", patient_id
    )
    if row is None:
        return  # no plan: nothing to reschedule (alerts still records the event)
    state = change(PlanState.model_validate(row["state"], strict=False))
    await ctx.conn.execute(
        "UPDATE plans SET state = $2, updated_at = $3 WHERE patient_id = $1",
        patient_id,
        state.model_dump(mode="json"),
        ctx.now,
    )
    await ctx.conn.execute(
        "DELETE FROM due_items WHERE patient_id = $1 AND emitted_at IS NULL AND due_at >= $2",
        patient_id,
        ctx.now,
    )
    await _materialise(ctx, patient_id, state, ctx.now, row["horizon_until"])


async def _materialise(
    ctx: Context, patient_id: str, state: PlanState, start: datetime, end: datetime
) -> None:
    items = due_items(state, start, end)
    await ctx.conn.executemany(
        "INSERT INTO due_items (patient_id, key, type, due_at, data) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (patient_id, key) DO NOTHING",
        [
            (patient_id, i.key, i.type, i.due_utc, i.to_data(patient_id).model_dump(mode="json"))
            for i in items
        ],
    )


# --- background loops -------------------------------------------------------------


async def extend_horizons(runtime: Runtime) -> None:
    await runtime.run_loop(lambda: _extend_batch(runtime), 0.5)


async def _extend_batch(runtime: Runtime) -> int:
    """Materialise the next stretch for plans whose horizon runs short."""
    hours = runtime.settings.schedule_horizon_hours
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn, conn.transaction():
        now = runtime.clock.now()
        rows = await conn.fetch(
            "SELECT patient_id, state, horizon_until FROM plans WHERE active AND horizon_until < $1"
            " ORDER BY horizon_until LIMIT 500 FOR UPDATE SKIP LOCKED",
            now + timedelta(hours=hours / 2),
        )
        ctx = runtime.context(conn, now)
        for row in rows:
            until = now + timedelta(hours=hours)
            state = PlanState.model_validate(row["state"], strict=False)
            await _materialise(ctx, row["patient_id"], state, row["horizon_until"], until)
            await conn.execute(
                "UPDATE plans SET horizon_until = $2 WHERE patient_id = $1",
                row["patient_id"],
                until,
            )
    return len(rows)


async def emit_due(runtime: Runtime) -> None:
    await runtime.run_loop(lambda: _emit_batch(runtime), runtime.settings.timer_poll_s)


async def _emit_batch(runtime: Runtime) -> int:
    """Claim due items (SKIP LOCKED, so workers share them) and emit them once."""
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn, conn.transaction():
        now = runtime.clock.now()
        rows = await conn.fetch(
            "SELECT patient_id, key, type, due_at, data FROM due_items"
            " WHERE emitted_at IS NULL AND due_at <= $1 ORDER BY due_at, patient_id, key"
            " LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            runtime.settings.timer_batch,
        )
        ctx = runtime.context(conn, now)
        for r in rows:
            data = event_type(r["type"]).model.model_validate_json(json.dumps(r["data"]))
            ctx.emit(r["type"], data, id_=stable_id("due", r["patient_id"], r["key"], r["type"]))
        await conn.executemany(
            "UPDATE due_items SET emitted_at = $3, late = $4 WHERE patient_id = $1 AND key = $2",
            [(r["patient_id"], r["key"], now, now - r["due_at"] > LATE_AFTER) for r in rows],
        )
        await ctx.flush()
    if rows:
        runtime.wake_relay()
    return len(rows)


SPEC = ServiceSpec(
    name="scheduler",
    topics=(INTAKE_DECISIONS, CLINICAL_EVENTS),
    migrations=Path(__file__).parent / "migrations",
    handle=handle,
    loops=(extend_horizons, emit_due),
)
