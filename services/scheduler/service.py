"""Scheduler worker: keeps each patient's plan (services/scheduler/plans.py) and its
rolling horizon of due items, emitted at their due time (services/scheduler/horizon.py)."""

from __future__ import annotations

from pathlib import Path

from services.scheduler.horizon import EXTEND_EVERY_S, emit_due, extend_horizons, prune_emitted
from services.scheduler.plans import CREATES, UPDATES, handle_batch
from services.scheduler.repository import PgPlans
from shared.runtime import LoopSpec, ServiceSpec
from shared.spec import Work
from shared.topics import CLINICAL_EVENTS, INTAKE_DECISIONS

SPEC = ServiceSpec(
    name="scheduler",
    topics=(INTAKE_DECISIONS, CLINICAL_EVENTS),
    migrations=Path(__file__).parent / "migrations",
    handle=handle_batch,
    handles=frozenset({CREATES, *UPDATES}),
    repositories=PgPlans,
    loops=(
        LoopSpec("horizon", extend_horizons, lambda _: EXTEND_EVERY_S),
        LoopSpec("due", emit_due, lambda settings: settings.timer_poll_s),
        LoopSpec("due_pruning", prune_emitted, lambda settings: settings.housekeeping_every_s),
    ),
    work=(
        Work(
            "due",
            "SELECT count(*) FROM {schema}.due_items WHERE emitted_at IS NULL AND due_at <= $1",
            "SELECT min(due_at) FROM {schema}.due_items WHERE emitted_at IS NULL AND due_at > $1",
        ),
        # plans whose horizon is yet to be extended: an item not materialised yet is
        # work too (a clock step can outrun the extender)
        Work(
            "horizon",
            "SELECT count(*) FROM {schema}.plans WHERE active AND horizon_until"
            " < $1 + interval '1 hour' * {settings.schedule_horizon_hours} / 2",
        ),
    ),
)
