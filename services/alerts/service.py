"""Alerts worker: per batch of inputs (or of due deadlines) it loads the patients'
alert states in one query, runs the pure engine on each input in order, saves the
changed states in one statement, audits each transition, and writes the alert and
notification events and the deadline timers they ask for."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client import Counter

from services.alerts.domain.engine import HANDLERS, Outcome, Timer
from services.alerts.domain.engine import handle as engine_handle
from services.alerts.domain.engine import on_timer as engine_on_timer
from services.alerts.domain.state import STORED as ALERT_STATE
from services.alerts.domain.state import PatientAlertState
from shared.envelope import Event
from shared.runtime import Context, ServiceSpec
from shared.timers import TimerRow
from shared.topics import CLINICAL_EVENTS, SCHEDULE

#: DESIGN.md §4.3 r2: a patient adopted without a plan seen is counted, so operators
#: see a deployment, retention or restore gap instead of silence.
ADOPTED = Counter(
    "ntx_patients_adopted_total",
    "Patients the alerts service took under treatment without having seen their plan",
)

AUDIT = (
    "INSERT INTO alert_audit (event_id, patient_id, type, alert_id, alert, severity, detail, at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING"
)


async def handle_batch(ctx: Context, events: list[Event]) -> None:
    states = await _load(ctx, {e.patient_id for e in events})
    for event in events:
        ctx.cause = event.envelope
        state = states.get(event.patient_id)
        outcome = engine_handle(
            state, event.type, event.data, event.envelope.id, ctx.now, in_place=True
        )
        if outcome.adopted:
            ADOPTED.inc()
        states[event.patient_id] = _apply(ctx, event.patient_id, outcome)
    await _save(ctx, states.items())


async def on_timers(ctx: Context, due: list[TimerRow]) -> None:
    states = await _load(ctx, {row.patient_id for row in due})
    for row in due:
        state = states.get(row.patient_id)
        if state is None:
            continue
        timer = Timer(key=row.key, due_at=row.due_at, kind=row.kind, payload=row.payload)
        outcome = engine_on_timer(state, timer, ctx.now, in_place=True)
        states[row.patient_id] = _apply(ctx, row.patient_id, outcome)
    await _save(ctx, states.items())


async def _load(ctx: Context, patients: set[str]) -> dict[str, PatientAlertState | None]:
    """The patients' states (the runtime holds their locks for this transaction)."""
    rows = await ctx.conn.fetch(
        "SELECT patient_id, state::text AS state FROM patient_state WHERE patient_id = ANY($1)",
        list(patients),
    )
    found: dict[str, PatientAlertState | None] = dict.fromkeys(patients)
    for r in rows:
        found[r["patient_id"]] = ALERT_STATE.load(r["state"])
    return found


async def _save(ctx: Context, states: Iterable[tuple[str, PatientAlertState | None]]) -> None:
    saved = [(pid, s.model_dump_json()) for pid, s in states if s is not None]
    if not saved:
        return
    patients, documents = zip(*saved, strict=True)
    await ctx.conn.execute(
        "INSERT INTO patient_state (patient_id, state, updated_at)"
        " SELECT p, s::jsonb, $3 FROM unnest($1::text[], $2::text[]) AS r(p, s)"
        " ON CONFLICT (patient_id) DO UPDATE SET state = EXCLUDED.state,"
        " updated_at = EXCLUDED.updated_at",
        list(patients),
        list(documents),
        ctx.now,
    )


def _apply(ctx: Context, patient_id: str, outcome: Outcome) -> PatientAlertState:
    for emit in outcome.emits:
        ctx.emit(emit.type, emit.data, id_=emit.id)
        d = emit.data
        detail = getattr(d, "reason", None) or getattr(d, "audience", "")
        ctx.defer(
            AUDIT,
            (emit.id, patient_id, emit.type, d.alert_id, d.alert, d.severity, detail, ctx.now),
        )  # type: ignore[attr-defined]
    for key in outcome.cancel_timers:
        ctx.cancel_timer(patient_id, key)
    for t in outcome.set_timers:
        ctx.set_timer(TimerRow(patient_id, t.key, t.kind, t.due_at, dict(t.payload)))
    return outcome.state


SPEC = ServiceSpec(
    name="alerts",
    topics=(SCHEDULE, CLINICAL_EVENTS),
    migrations=Path(__file__).parent / "migrations",
    handle=handle_batch,
    handles=frozenset(HANDLERS),
    on_timers=on_timers,
)
