"""Alerts worker: one transaction per input loads the patient's alert state, runs the
pure engine, saves the new state, audits each transition, and writes the alert and
notification events and the deadline timers it asks for."""

from __future__ import annotations

from pathlib import Path

from services.alerts.domain.engine import Outcome, Timer
from services.alerts.domain.engine import handle as engine_handle
from services.alerts.domain.engine import on_timer as engine_on_timer
from services.alerts.domain.state import PatientAlertState
from shared.envelope import Event
from shared.runtime import Context, ServiceSpec
from shared.timers import TimerRow
from shared.topics import CLINICAL_EVENTS, SCHEDULE


async def handle(ctx: Context, event: Event) -> None:
    state = await _load(ctx, event.patient_id)
    outcome = engine_handle(state, event.type, event.data, event.envelope.id, ctx.now)
    await _apply(ctx, event.patient_id, outcome)


async def on_timer(ctx: Context, row: TimerRow) -> None:
    state = await _load(ctx, row.patient_id)
    if state is None:
        return
    timer = Timer(key=row.key, due_at=row.due_at, kind=row.kind, payload=row.payload)
    await _apply(ctx, row.patient_id, engine_on_timer(state, timer, ctx.now))


async def _load(ctx: Context, patient_id: str) -> PatientAlertState | None:
    raw = await ctx.conn.fetchval(
        "SELECT state FROM patient_state WHERE patient_id = $1 FOR UPDATE", patient_id
    )
    return None if raw is None else PatientAlertState.model_validate(raw, strict=False)


async def _apply(ctx: Context, patient_id: str, outcome: Outcome) -> None:
    await ctx.conn.execute(
        "INSERT INTO patient_state (patient_id, state, updated_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (patient_id) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
        patient_id,
        outcome.state.model_dump(mode="json"),
        ctx.now,
    )
    for emit in outcome.emits:
        ctx.emit(emit.type, emit.data, id_=emit.id)
    await _audit(ctx, outcome)
    for key in outcome.cancel_timers:
        ctx.cancel_timer(patient_id, key)
    for t in outcome.set_timers:
        ctx.set_timer(TimerRow(patient_id, t.key, t.kind, t.due_at, dict(t.payload)))


async def _audit(ctx: Context, outcome: Outcome) -> None:
    rows = []
    for emit in outcome.emits:
        d = emit.data
        detail = getattr(d, "reason", None) or getattr(d, "audience", "")
        rows.append(
            (emit.id, d.patient_id, emit.type, d.alert_id, d.alert, d.severity, detail, ctx.now)
        )
    await ctx.conn.executemany(
        "INSERT INTO alert_audit (event_id, patient_id, type, alert_id, alert, severity, detail, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
        rows,
    )


SPEC = ServiceSpec(
    name="alerts",
    topics=(SCHEDULE, CLINICAL_EVENTS),
    migrations=Path(__file__).parent / "migrations",
    handle=handle,
    on_timer=on_timer,
)
