"""A patient's schedule state: the plan plus what happened since (holds, the last
injection, a stop, a raised liver result). Stored as one versioned JSON row per
patient: :data:`STORED` loads any row ever written through its upcasters."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from services.scheduler.domain.settings import DEFAULT_SETTINGS, ScheduleSettings
from shared.events import (
    InjectionAdministered,
    LabResulted,
    PlannedProcedure,
    ProcedureScheduled,
    TreatmentPlan,
    TreatmentStopped,
)
from shared.localtime import local_midnight_utc, local_today
from shared.stored import VersionedDocument


class PlanState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The stored shape's version: bump it, with an upcaster, when the shape changes.
    schema_version: Literal[2] = 2
    plan: TreatmentPlan
    xr_anchor_date: date | None = None
    procedures: list[date] = []
    stopped_at_utc: datetime | None = None
    #: [r2] local date of the first result at >= 3x ULN during treatment: liver
    #: tests are monthly after it.
    lft_monthly_from: date | None = None
    #: [r2] a procedure reported after its re-induction day began: the notice is due
    #: when the report arrived, not before it existed.
    reinduction_not_before: datetime | None = None

    @property
    def suspended_after(self) -> date | None:
        """The first procedure needing opioid analgesia ends this plan."""
        ahead = [d for d in self.procedures if d >= self.plan.start_date]
        return min(ahead) if ahead else None


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 1 is every row written before documents carried a version; its fields
    are version 2's. Rows of revision 1 lack ``lft_monthly_from`` and
    ``reinduction_not_before`` (none was known then: the defaults hold) and their
    plans ``mwf_step_days`` (the plan model gives Mon/Wed/Fri plans the default)."""
    return doc


STORED = VersionedDocument(PlanState, (_v1_to_v2,))


def new_state(plan: TreatmentPlan) -> PlanState:
    return PlanState(plan=plan, procedures=_analgesia_dates(plan.planned_procedures))


def _analgesia_dates(procedures: list[PlannedProcedure]) -> list[date]:
    return sorted({p.date for p in procedures if p.requires_opioid_analgesia})


def apply_procedure(
    state: PlanState,
    event: ProcedureScheduled,
    now: datetime,
    s: ScheduleSettings = DEFAULT_SETTINGS,
) -> PlanState:
    """A procedure reported on or after its date (an emergency) still holds what
    remains; if its re-induction day has begun, the notice is due at once."""
    if not event.requires_opioid_analgesia:
        return state
    changed = state.model_copy(update={"procedures": sorted({*state.procedures, event.date})})
    suspended = changed.suspended_after
    if suspended is None or suspended == state.suspended_after:
        return changed
    notice = local_midnight_utc(
        suspended + timedelta(days=s.reinduction_after_days), state.plan.timezone
    )
    late = now if now > notice else None
    return changed.model_copy(update={"reinduction_not_before": late})


def apply_injection(
    state: PlanState, event: InjectionAdministered, now: datetime | None = None
) -> PlanState:
    """Re-anchor: the next injection is due 28 days after the one actually given."""
    if state.plan.formulation != "xr":
        return state
    given = local_today(event.administered_at, state.plan.timezone)
    return state.model_copy(update={"xr_anchor_date": given})


def apply_stop(state: PlanState, event: TreatmentStopped, now: datetime | None = None) -> PlanState:
    return state.model_copy(update={"stopped_at_utc": event.stopped_at})


def apply_lab(
    state: PlanState,
    event: LabResulted,
    now: datetime | None = None,
    s: ScheduleSettings = DEFAULT_SETTINGS,
) -> PlanState:
    """From the first result at >= 3x ULN collected during treatment, liver tests are
    monthly (DESIGN.md §4.2 r2); a later or lower result never makes them rarer."""
    if state.lft_monthly_from is not None or event.uln_multiple < s.lft_monthly_multiple:
        return state
    if not during_treatment(state, event.collected_at):
        return state
    collected = local_today(event.collected_at, state.plan.timezone)
    return state.model_copy(update={"lft_monthly_from": collected})


def during_treatment(state: PlanState, moment: datetime) -> bool:
    """From the plan's start to a stop or the end of the procedure day that suspends it."""
    zone = state.plan.timezone
    if moment < local_midnight_utc(state.plan.start_date, zone):
        return False
    if state.stopped_at_utc is not None and moment >= state.stopped_at_utc:
        return False
    suspended = state.suspended_after
    return suspended is None or local_today(moment, zone) <= suspended
