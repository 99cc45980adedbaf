"""Plans from inputs: an accepted intake creates a patient's plan; a procedure, an
injection given or a stop changes it. A batch of inputs reads the patients' plans in
one query, applies each input in order in memory, then writes the plans and
re-materialises their horizons in a few statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scheduler.domain import (
    PlanState,
    apply_injection,
    apply_lab,
    apply_procedure,
    apply_stop,
    new_state,
)
from services.scheduler.domain.state import STORED as PLAN_STATE
from services.scheduler.horizon import insert_items, item_rows
from shared.envelope import Event, stable_id
from shared.events import IntakeDecided
from shared.localtime import local_midnight_utc
from shared.runtime import Context

CREATES = "ntx.intake.accepted.v1"
#: What each input does to a plan, given the moment it arrives; every other type on
#: the scheduler's topics (deferrals, doses, screens) changes no schedule.
UPDATES = {
    "ntx.procedure.scheduled.v1": apply_procedure,
    "ntx.injection.administered.v1": apply_injection,
    "ntx.treatment.stopped.v1": apply_stop,
    "ntx.lab.resulted.v1": apply_lab,
}


@dataclass
class _Plan:
    state: PlanState
    horizon_until: datetime
    #: Items are re-made from here on: the start of a new plan, else "now".
    since: datetime | None = None
    created: bool = False


async def handle_batch(ctx: Context, events: list[Event]) -> None:
    plans = await _load(ctx, {e.patient_id for e in events})
    for event in events:
        ctx.cause = event.envelope
        if event.type == CREATES:
            plans[event.patient_id] = _create(ctx, event)
            continue
        plan = plans.get(event.patient_id)
        if plan is None:
            continue  # no plan: nothing to reschedule (alerts still records the event)
        plan.state = UPDATES[event.type](plan.state, event.data, ctx.now)  # type: ignore[operator]
        plan.since = plan.since or ctx.now
    await _save(ctx, {pid: p for pid, p in plans.items() if p.since is not None})


def _create(ctx: Context, event: Event) -> _Plan:
    decided = event.data
    assert isinstance(decided, IntakeDecided) and decided.plan is not None
    assert ctx.settings is not None
    start = local_midnight_utc(decided.plan.start_date, decided.plan.timezone)
    until = max(ctx.now, start) + timedelta(hours=ctx.settings.schedule_horizon_hours)
    ctx.emit(
        "ntx.plan.created.v1",
        decided.plan,
        id_=stable_id("plan", event.envelope.source, event.envelope.id),
    )
    return _Plan(new_state(decided.plan), until, since=start, created=True)


async def _load(ctx: Context, patients: set[str]) -> dict[str, _Plan]:
    rows = await ctx.conn.fetch(
        "SELECT patient_id, state::text AS state, horizon_until FROM plans"
        " WHERE patient_id = ANY($1) ORDER BY patient_id FOR UPDATE",
        list(patients),
    )
    return {r["patient_id"]: _Plan(PLAN_STATE.load(r["state"]), r["horizon_until"]) for r in rows}


async def _save(ctx: Context, changed: dict[str, _Plan]) -> None:
    """Write the plans, drop their items not yet emitted (all of a new plan's, the
    rest from now on), and materialise their horizons again."""
    if not changed:
        return
    await ctx.conn.execute(
        "INSERT INTO plans (patient_id, state, active, horizon_until, updated_at)"
        " SELECT p, s::jsonb, true, h, $4"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS r(p, s, h)"
        " ON CONFLICT (patient_id) DO UPDATE SET state = EXCLUDED.state, active = true,"
        " horizon_until = EXCLUDED.horizon_until, updated_at = EXCLUDED.updated_at",
        list(changed),
        [p.state.model_dump_json() for p in changed.values()],
        [p.horizon_until for p in changed.values()],
        ctx.now,
    )
    await ctx.conn.execute(
        "DELETE FROM due_items WHERE patient_id = ANY($1) AND emitted_at IS NULL"
        " AND (patient_id = ANY($2) OR due_at >= $3)",
        list(changed),
        [pid for pid, p in changed.items() if p.created],
        ctx.now,
    )
    rows = []
    for pid, plan in changed.items():
        assert plan.since is not None
        rows.extend(item_rows(pid, plan.state, plan.since, plan.horizon_until))
    await insert_items(ctx.conn, rows)
