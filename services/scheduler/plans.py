"""Plans from inputs: an accepted intake creates a patient's plan; a procedure, an
injection given or a stop changes it. A batch of inputs reads the patients' plans in
one query, applies each input in order in memory, then writes the plans and
re-materialises their horizons: through its repository
(:mod:`services.scheduler.repository`), a few statements on PostgreSQL."""

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
from services.scheduler.horizon import item_rows
from services.scheduler.repository import Plan, Plans
from shared.envelope import Event, stable_id
from shared.events import IntakeDecided
from shared.localtime import local_midnight_utc
from shared.unit_of_work import UnitOfWork

Context = UnitOfWork[Plans]

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
    loaded = await ctx.repos.load({e.patient_id for e in events})
    plans = {pid: _Plan(p.state, p.horizon_until) for pid, p in loaded.items()}
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


async def _save(ctx: Context, changed: dict[str, _Plan]) -> None:
    """Write the plans, drop their items not yet emitted (all of a new plan's, the
    rest from now on), and materialise their horizons again."""
    if not changed:
        return
    repo = ctx.repos
    await repo.save({pid: Plan(p.state, p.horizon_until) for pid, p in changed.items()})
    created = [pid for pid, p in changed.items() if p.created]
    await repo.drop_unemitted(list(changed), created, ctx.now)
    items = []
    for pid, plan in changed.items():
        assert plan.since is not None
        items.extend(item_rows(pid, plan.state, plan.since, plan.horizon_until))
    await repo.add_items(items)
