"""A patient's schedule state: the plan plus what happened since (holds, the last
injection, a stop). JSON round-trippable, stored as one row per patient."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from shared.events import (
    InjectionAdministered,
    PlannedProcedure,
    ProcedureScheduled,
    TreatmentPlan,
    TreatmentStopped,
)
from shared.localtime import local_today


class PlanState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    plan: TreatmentPlan
    xr_anchor_date: date | None = None
    procedures: list[date] = []
    stopped_at_utc: datetime | None = None

    @property
    def suspended_after(self) -> date | None:
        """The first procedure needing opioid analgesia ends this plan."""
        ahead = [d for d in self.procedures if d >= self.plan.start_date]
        return min(ahead) if ahead else None


def new_state(plan: TreatmentPlan) -> PlanState:
    return PlanState(plan=plan, procedures=_analgesia_dates(plan.planned_procedures))


def _analgesia_dates(procedures: list[PlannedProcedure]) -> list[date]:
    return sorted({p.date for p in procedures if p.requires_opioid_analgesia})


def apply_procedure(state: PlanState, event: ProcedureScheduled) -> PlanState:
    if not event.requires_opioid_analgesia:
        return state
    return state.model_copy(update={"procedures": sorted({*state.procedures, event.date})})


def apply_injection(state: PlanState, event: InjectionAdministered) -> PlanState:
    """Re-anchor: the next injection is due 28 days after the one actually given."""
    if state.plan.formulation != "xr":
        return state
    given = local_today(event.administered_at, state.plan.timezone)
    return state.model_copy(update={"xr_anchor_date": given})


def apply_stop(state: PlanState, event: TreatmentStopped) -> PlanState:
    return state.model_copy(update={"stopped_at_utc": event.stopped_at})
