"""Intake worker: decides each request with the pure rules, keeps the current request
per patient and an append-only audit, publishes the decision through the outbox, and
re-evaluates a deferred patient on the earliest start date.

It asks its unit of work for its tables (:mod:`services.intake.repository`). On
PostgreSQL a batch of requests costs three statements: read the patients' current
requests, upsert the new ones, append the audit rows (at the unit's flush)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from services.intake.domain.rules import Decided, IntakeInputError, decide
from services.intake.repository import Audited, OnFile, PgRequests, Requests
from shared.envelope import Envelope, Event, InvalidEvent, stable_id
from shared.events import IntakeDecided, IntakeRequested
from shared.localtime import local_midnight_utc, local_today
from shared.runtime import ServiceSpec, each_timer
from shared.timers import TimerRow
from shared.topics import INTAKE_REQUESTS
from shared.unit_of_work import UnitOfWork

RECHECK = "recheck"
Context = UnitOfWork[Requests]


async def handle_batch(ctx: Context, events: list[Event]) -> None:
    requests = ctx.repos
    on_file = await requests.requested_at({e.patient_id for e in events})
    changed: dict[str, OnFile] = {}
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
        changed[request.patient_id] = OnFile(
            env.source, env.id, env.time, request, decided.decided.decision
        )
        _publish(ctx, env.source, env.id, decided, "request", request)
    await requests.keep(list(changed.values()))


def _evaluate(request: IntakeRequested, as_of: date) -> Decided:
    try:
        return decide(request, as_of)
    except IntakeInputError as exc:
        field, message = exc.errors[0]
        raise InvalidEvent(f"data.{field}", message) from None


async def on_timer(ctx: Context, timer: TimerRow) -> None:
    current = await ctx.repos.on_file(timer.patient_id)
    if current is None or current.id != timer.payload.get("request_id"):
        return  # superseded since the timer was set
    decided = _evaluate(current.request, date.fromisoformat(timer.payload["as_of"]))
    await ctx.repos.decided(timer.patient_id, decided.decided.decision)
    trigger = f"recheck:{decided.decided.as_of}"
    _publish(ctx, current.source, current.id, decided, trigger, current.request)


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
            local_midnight_utc(due, zone),
            {"request_id": request_id, "as_of": due.isoformat()},
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
    ctx.repos.audit(
        Audited(
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
            *overrides,
        )
    )


def _audit_superseded(ctx: Context, env: Envelope, request: IntakeRequested) -> None:
    as_of = local_today(ctx.now, request.timezone)
    ctx.repos.audit(
        Audited(
            request.patient_id,
            env.source,
            env.id,
            ctx.now,
            as_of,
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
        )
    )


SPEC = ServiceSpec(
    name="intake",
    topics=(INTAKE_REQUESTS,),
    migrations=Path(__file__).parent / "migrations",
    handle=handle_batch,
    on_timers=each_timer(on_timer),
    repositories=PgRequests,
)
