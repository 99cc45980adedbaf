"""Intake worker: decides each request with the pure rules, keeps the current request
per patient and an append-only audit, publishes the decision through the outbox, and
re-evaluates a deferred patient on the earliest start date.

A batch of requests costs three statements: read the patients' current requests,
upsert the new ones, append the audit rows (deferred to the context's flush)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from services.intake.domain.rules import Decided, IntakeInputError, decide
from services.intake.domain.stored import STORED, stored_json
from shared.envelope import Envelope, Event, InvalidEvent, stable_id
from shared.events import IntakeDecided, IntakeRequested
from shared.localtime import local_midnight_utc, local_today
from shared.runtime import Context, ServiceSpec, each_timer
from shared.timers import TimerRow
from shared.topics import INTAKE_REQUESTS

RECHECK = "recheck"
AUDIT = (
    "INSERT INTO decisions (patient_id, request_source, request_id, decided_at, as_of, trigger,"
    " ruleset_version, decision, reasons, earliest_start_date, advisories, plan, event_id,"
    " overridden_by, overridden)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)


@dataclass
class _Current:
    """A patient's request on file: the one later requests must be newer than."""

    env: Envelope
    request: IntakeRequested
    decision: str


async def handle_batch(ctx: Context, events: list[Event]) -> None:
    on_file = await _requested_at(ctx, {e.patient_id for e in events})
    changed: dict[str, _Current] = {}
    for event in events:
        ctx.cause = env = event.envelope
        request = event.data
        assert isinstance(request, IntakeRequested)
        newest = on_file.get(request.patient_id)
        if newest is not None and newest > env.time:
            _audit_superseded(ctx, env, request)
            continue
        decided = _evaluate(request, local_today(ctx.now, request.timezone))
        on_file[request.patient_id] = env.time
        changed[request.patient_id] = _Current(env, request, decided.decided.decision)
        _publish(ctx, env.source, env.id, decided, "request", request)
    await _store(ctx, list(changed.values()))


def _evaluate(request: IntakeRequested, as_of: date) -> Decided:
    try:
        return decide(request, as_of)
    except IntakeInputError as exc:
        field, message = exc.errors[0]
        raise InvalidEvent(f"data.{field}", message) from None


async def on_timer(ctx: Context, timer: TimerRow) -> None:
    row = await ctx.conn.fetchrow(
        "SELECT request_source, request_id, request::text AS request FROM patients"
        " WHERE patient_id = $1",
        timer.patient_id,
    )
    if row is None or row["request_id"] != timer.payload.get("request_id"):
        return  # superseded since the timer was set
    request = STORED.load(row["request"])
    decided = _evaluate(request, date.fromisoformat(timer.payload["as_of"]))
    await ctx.conn.execute(
        "UPDATE patients SET decision = $2, updated_at = $3 WHERE patient_id = $1",
        timer.patient_id,
        decided.decided.decision,
        ctx.now,
    )
    trigger = f"recheck:{decided.decided.as_of}"
    _publish(ctx, row["request_source"], row["request_id"], decided, trigger, request)


async def _requested_at(ctx: Context, patients: set[str]) -> dict[str, datetime]:
    rows = await ctx.conn.fetch(
        "SELECT patient_id, requested_at FROM patients WHERE patient_id = ANY($1)", list(patients)
    )
    return {r["patient_id"]: r["requested_at"] for r in rows}


async def _store(ctx: Context, current: list[_Current]) -> None:
    await ctx.conn.executemany(
        "INSERT INTO patients (patient_id, request_source, request_id, requested_at, request, decision, updated_at)"
        " VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7) ON CONFLICT (patient_id) DO UPDATE SET"
        " request_source = EXCLUDED.request_source, request_id = EXCLUDED.request_id,"
        " requested_at = EXCLUDED.requested_at, request = EXCLUDED.request,"
        " decision = EXCLUDED.decision, updated_at = EXCLUDED.updated_at",
        [
            (
                c.request.patient_id,
                c.env.source,
                c.env.id,
                c.env.time,
                stored_json(c.request),
                c.decision,
                ctx.now,
            )
            for c in current
        ],
    )


def decision_event_type(decided: IntakeDecided) -> str:
    """``ntx.intake.accepted.v1``, ``.deferred.v1`` or ``.rejected.v1``."""
    return f"ntx.intake.{decided.decision}.v1"


def _publish(
    ctx: Context,
    source: str,
    request_id: str,
    result: Decided,
    trigger: str,
    request: IntakeRequested,
) -> None:
    decided = result.decided
    event_id = stable_id(source, request_id, trigger)
    ctx.emit(decision_event_type(decided), decided, id_=event_id)
    override = request.clinician_override if result.overridden else None
    _audit(
        ctx,
        source,
        request_id,
        decided,
        trigger.split(":")[0],
        event_id,
        (override.by if override else None, result.overridden),
    )
    _schedule_recheck(ctx, request_id, decided, request.timezone)


def _schedule_recheck(ctx: Context, request_id: str, decided: IntakeDecided, zone: str) -> None:
    """A deferral with a known earliest start after today is looked at again on that
    date. One whose earliest start is today itself (a positive naloxone challenge
    from yesterday or before) waits for new input: the same request evaluated again
    today would defer again, so a timer would only fire over and over."""
    due = decided.earliest_start_date
    if decided.decision != "deferred" or due is None or due <= decided.as_of:
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


def _audit(
    ctx: Context,
    source: str,
    request_id: str,
    decided: IntakeDecided,
    trigger: str,
    event_id: str | None,
    overrides: tuple[str | None, list[str]] = (None, []),
) -> None:
    """One append-only row per decision, with who overrode which reasons."""
    d = decided.model_dump(mode="json")
    ctx.defer(
        AUDIT,
        (
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
            overrides[0],
            overrides[1],
        ),
    )


def _audit_superseded(ctx: Context, env: Envelope, request: IntakeRequested) -> None:
    ctx.defer(
        AUDIT,
        (
            request.patient_id,
            env.source,
            env.id,
            ctx.now,
            local_today(ctx.now, request.timezone),
            "superseded",
            "-",
            "superseded",
            [],
            None,
            [],
            None,
            None,
            None,
            [],
        ),
    )


SPEC = ServiceSpec(
    name="intake",
    topics=(INTAKE_REQUESTS,),
    migrations=Path(__file__).parent / "migrations",
    handle=handle_batch,
    on_timers=each_timer(on_timer),
)
