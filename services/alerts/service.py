"""Alerts worker: per batch of inputs (or of due deadlines) it loads the patients'
alert states, runs the pure engine on each input in order, saves the changed states,
audits each transition, and writes the alert and notification events and the
deadline timers they ask for. Its tables are its repository's
(:mod:`services.alerts.repository`): one query and one statement a batch on
PostgreSQL, or memory for handler tests and ``ntx alerts replay``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import Counter

from services.alerts.domain.engine import HANDLERS, Outcome, Timer
from services.alerts.domain.engine import handle as engine_handle
from services.alerts.domain.engine import on_timer as engine_on_timer
from services.alerts.domain.state import PatientAlertState
from services.alerts.repository import AlertStates, Audited, PgAlertStates
from shared.envelope import Event
from shared.runtime import ServiceSpec
from shared.timers import TimerRow
from shared.topics import CLINICAL_EVENTS, DELIVERIES, SCHEDULE
from shared.unit_of_work import UnitOfWork

#: DESIGN.md §4.3 r2: a patient adopted without a plan seen is counted, so operators
#: see a deployment, retention or restore gap instead of silence.
ADOPTED = Counter(
    "ntx_patients_adopted_total",
    "Patients the alerts service took under treatment without having seen their plan",
)

Context = UnitOfWork[AlertStates]


async def handle_batch(ctx: Context, events: list[Event]) -> None:
    states = await ctx.repos.load({e.patient_id for e in events})
    for event in events:
        ctx.cause = event.envelope
        state = states.get(event.patient_id)
        outcome = engine_handle(
            state, event.type, event.data, event.envelope.id, ctx.now, in_place=True
        )
        if outcome.adopted:
            ADOPTED.inc()
        states[event.patient_id] = _apply(ctx, event.patient_id, outcome)
    await _save(ctx, states)


async def on_timers(ctx: Context, due: list[TimerRow]) -> None:
    states = await ctx.repos.load({row.patient_id for row in due})
    for row in due:
        state = states.get(row.patient_id)
        if state is None:
            continue
        timer = Timer(key=row.key, due_at=row.due_at, kind=row.kind, payload=row.payload)
        outcome = engine_on_timer(state, timer, ctx.now, in_place=True)
        states[row.patient_id] = _apply(ctx, row.patient_id, outcome)
    await _save(ctx, states)


async def _save(ctx: Context, states: dict[str, PatientAlertState | None]) -> None:
    await ctx.repos.save({pid: s for pid, s in states.items() if s is not None})


def _apply(ctx: Context, patient_id: str, outcome: Outcome) -> PatientAlertState:
    for emit in outcome.emits:
        ctx.emit(emit.type, emit.data, id_=emit.id)
        d: Any = emit.data  # an alert change or a notification request
        detail = str(getattr(d, "reason", None) or getattr(d, "audience", ""))
        ctx.repos.audit(
            Audited(
                emit.id, patient_id, emit.type, d.alert_id, d.alert, d.severity, detail, ctx.now
            )
        )
    for key in outcome.cancel_timers:
        ctx.cancel_timer(patient_id, key)
    for t in outcome.set_timers:
        ctx.set_timer(TimerRow(patient_id, t.key, t.kind, t.due_at, dict(t.payload)))
    return outcome.state


SPEC = ServiceSpec(
    name="alerts",
    topics=(SCHEDULE, CLINICAL_EVENTS, DELIVERIES),
    migrations=Path(__file__).parent / "migrations",
    handle=handle_batch,
    handles=frozenset(HANDLERS),
    on_timers=on_timers,
    repositories=PgAlertStates,
)
