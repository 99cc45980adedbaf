"""Scheduler worker: keeps each patient's plan (services/scheduler/plans.py) and its
rolling horizon of due items, emitted at their due time (services/scheduler/horizon.py)."""

from __future__ import annotations

from pathlib import Path

from services.scheduler.horizon import emit_due, extend_horizons, prune_emitted
from services.scheduler.plans import CREATES, UPDATES, handle_batch
from shared.runtime import ServiceSpec
from shared.topics import CLINICAL_EVENTS, INTAKE_DECISIONS

SPEC = ServiceSpec(
    name="scheduler",
    topics=(INTAKE_DECISIONS, CLINICAL_EVENTS),
    migrations=Path(__file__).parent / "migrations",
    handle=handle_batch,
    handles=frozenset({CREATES, *UPDATES}),
    loops=(extend_horizons, emit_due, prune_emitted),
)
