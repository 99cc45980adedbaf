"""Intake worker: decides each request with the pure rules, keeps the current request
per patient and an append-only audit, publishes the decision through the outbox, and
re-evaluates a deferred patient on the earliest start date."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from services.intake.domain.rules import (
    IntakeInputError,
    decision_event_type,
    evaluate,
)
from shared.envelope import Envelope, Event, InvalidEvent, stable_id
from shared.events import IntakeDecided, IntakeRequested
from shared.localtime import local_midnight_utc, local_today
from shared.runtime import Context, ServiceSpec
from shared.timers import TimerRow
from shared.topics import INTAKE_REQUESTS

RECHECK = "recheck"


async def handle(ctx: Context, event: Event) -> None:
    request = event.data
    assert isinstance(request, IntakeRequested)
    env = event.envelope
    if await _is_superseded(ctx, request.patient_id, env.time):
        await _audit_superseded(ctx, env, request)
        return
    as_of = local_today(ctx.now, request.timezone)
    try:
        decided = evaluate(request, as_of)
    except IntakeInputError as exc:
        field, message = exc.errors[0]
        raise InvalidEvent(f"data.{field}", message) from None
    await _store_current(ctx, env, request, decided)
    await _publish(ctx, env.source, env.id, decided, "request", request.timezone)


async def on_timer(ctx: Context, timer: TimerRow) -> None:
    row = await ctx.conn.fetchrow(
        "SELECT request_source, request_id, request FROM patients WHERE patient_id = $1 FOR UPDATE",
        timer.patient_id,
    )
    if row is None or row["request_id"] != timer.payload.get("request_id"):
        return  # superseded since the timer was set
    request = IntakeRequested.model_validate_json(json.dumps(row["request"]))
    decided = evaluate(request, date.fromisoformat(timer.payload["as_of"]))
    await ctx.conn.execute(
        "UPDATE patients SET decision = $2, updated_at = $3 WHERE patient_id = $1",
        timer.patient_id,
        decided.decision,
        ctx.now,
    )
    trigger = f"recheck:{decided.as_of}"
    await _publish(
        ctx, row["request_source"], row["request_id"], decided, trigger, request.timezone
    )


async def _is_superseded(ctx: Context, patient_id: str, requested_at: datetime) -> bool:
    current = await ctx.conn.fetchval(
        "SELECT requested_at FROM patients WHERE patient_id = $1 FOR UPDATE", patient_id
    )
    return current is not None and current > requested_at


async def _store_current(
    ctx: Context, env: Envelope, request: IntakeRequested, decided: IntakeDecided
) -> None:
    await ctx.conn.execute(
        "INSERT INTO patients (patient_id, request_source, request_id, requested_at, request, decision, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (patient_id) DO UPDATE SET"
        " request_source = EXCLUDED.request_source, request_id = EXCLUDED.request_id,"
        " requested_at = EXCLUDED.requested_at, request = EXCLUDED.request,"
        " decision = EXCLUDED.decision, updated_at = EXCLUDED.updated_at",
        request.patient_id,
        env.source,
        env.id,
        env.time,
        request.model_dump(mode="json"),
        decided.decision,
        ctx.now,
    )


async def _publish(
    ctx: Context, source: str, request_id: str, decided: IntakeDecided, trigger: str, zone: str
) -> None:
    type_ = decision_event_type(decided)
    event_id = stable_id(source, request_id, trigger)
    ctx.emit(type_, decided, id_=event_id)
    await _audit(ctx, source, request_id, decided, trigger.split(":")[0], event_id)
    _schedule_recheck(ctx, request_id, decided, zone)


def _schedule_recheck(ctx: Context, request_id: str, decided: IntakeDecided, zone: str) -> None:
    """A deferral with a known earliest start is looked at again on that date."""
    if decided.decision != "deferred" or decided.earliest_start_date is None:
        ctx.cancel_timer(decided.patient_id, RECHECK)
        return
    ctx.set_timer(
        TimerRow(
            decided.patient_id,
            RECHECK,
            RECHECK,
            local_midnight_utc(decided.earliest_start_date, zone),
            {"request_id": request_id, "as_of": decided.earliest_start_date.isoformat()},
        )
    )


async def _audit(
    ctx: Context,
    source: str,
    request_id: str,
    decided: IntakeDecided,
    trigger: str,
    event_id: str | None,
) -> None:
    d = decided.model_dump(mode="json")
    await ctx.conn.execute(
        "INSERT INTO decisions (patient_id, request_source, request_id, decided_at, as_of, trigger,"
        " ruleset_version, decision, reasons, earliest_start_date, advisories, plan, event_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        decided.patient_id,
        source,
        request_id,
        ctx.now,
        decided.as_of,
        trigger,
        decided.ruleset_version,
        decided.decision,
        d["reasons"],
        decided.earliest_start_date,
        d["advisories"],
        d["plan"],
        event_id,
    )


async def _audit_superseded(ctx: Context, env: Envelope, request: IntakeRequested) -> None:
    await ctx.conn.execute(
        "INSERT INTO decisions (patient_id, request_source, request_id, decided_at, as_of, trigger,"
        " ruleset_version, decision, reasons, advisories) VALUES ($1, $2, $3, $4, $5, 'superseded',"
        " '-', 'superseded', '[]'::jsonb, '[]'::jsonb)",
        request.patient_id,
        env.source,
        env.id,
        ctx.now,
        local_today(ctx.now, request.timezone),
    )


SPEC = ServiceSpec(
    name="intake",
    topics=(INTAKE_REQUESTS,),
    migrations=Path(__file__).parent / "migrations",
    handle=handle,
    on_timer=on_timer,
)
