"""What is due when (DESIGN.md §4.2), computed day by day in the patient's zone.

Doses and injections are wall-clock times built as local date-times and converted
to UTC (never "+ 86,400 s"); date-only notices fall due at local midnight. Each
occurrence has a stable key, and a held dose keeps the key of the dose it replaces.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import BaseModel

from services.scheduler.domain.settings import (
    DEFAULT_SETTINGS,
    FRIDAY,
    MONDAY,
    WEDNESDAY,
    ScheduleSettings,
)
from services.scheduler.domain.state import PlanState
from shared import events as ev
from shared.localtime import local_midnight_utc, local_today, to_utc
from shared.topics import event_type

SURGERY_HOLD = "surgery_hold"
POST_PROCEDURE = "post_procedure"


@dataclass(frozen=True)
class DueItem:
    type: str
    key: str
    due_utc: datetime
    due_local: datetime | date
    dose_mg: int | None = None
    test: str | None = None
    reason: str | None = None
    requires_uds: bool | None = None

    def to_data(self, patient_id: str) -> BaseModel:
        """The event data of this item's type (fields the type does not carry are left out)."""
        model = event_type(self.type).model
        fields = {
            "patient_id": patient_id,
            "due_local": self.due_local,
            "due_utc": self.due_utc,
            "dose_mg": self.dose_mg,
            "test": self.test,
            "reason": self.reason,
            "requires_uds": self.requires_uds,
        }
        return model.model_validate(
            {k: v for k, v in fields.items() if k in model.model_fields and v is not None}
        )


def due_items(
    state: PlanState, start_utc: datetime, end_utc: datetime, s: ScheduleSettings = DEFAULT_SETTINGS
) -> list[DueItem]:
    """Every item with ``start_utc <= due_utc < end_utc``, in due order."""
    zone = state.plan.timezone
    first = max(local_today(start_utc, zone) - timedelta(days=1), state.plan.start_date)
    last = local_today(end_utc, zone) + timedelta(days=1)
    found = [
        item
        for day in _days(first, last)
        for item in items_on(state, day, s)
        if start_utc <= item.due_utc < end_utc and not _after_stop(state, item)
    ]
    return sorted(found, key=lambda i: (i.due_utc, i.type, i.key))


def schedule_ends(state: PlanState, s: ScheduleSettings = DEFAULT_SETTINGS) -> datetime | None:
    """The moment after which nothing more falls due (a stop, or the re-induction
    notice after a procedure), or None while the schedule runs on."""
    ends = []
    if state.stopped_at_utc is not None:
        ends.append(state.stopped_at_utc)
    if state.suspended_after is not None:
        last = state.suspended_after + timedelta(days=s.reinduction_after_days + 1)
        ends.append(local_midnight_utc(last, state.plan.timezone))
    return min(ends) if ends else None


def _days(first: date, last: date) -> Iterator[date]:
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


def _after_stop(state: PlanState, item: DueItem) -> bool:
    return state.stopped_at_utc is not None and item.due_utc >= state.stopped_at_utc


def items_on(state: PlanState, day: date, s: ScheduleSettings) -> list[DueItem]:
    """The items of one local day, before filtering by window and stop."""
    plan = state.plan
    if day < plan.start_date:
        return []
    suspended = state.suspended_after
    if suspended is not None and day > suspended:
        notice = suspended + timedelta(days=s.reinduction_after_days)
        return (
            [
                _notice(
                    "ntx.reinduction.required.v1", "reinduction", day, plan.timezone, POST_PROCEDURE
                )
            ]
            if day == notice
            else []
        )
    medication = _oral(state, day, s) if plan.formulation == "oral" else _xr(state, day, s)
    return [*medication, *_monitoring(state, day)]


# --- medication -------------------------------------------------------------------


def _oral(state: PlanState, day: date, s: ScheduleSettings) -> list[DueItem]:
    mg = oral_dose_mg(state, day, s)
    if mg is None:
        return []
    held = _held(state, day, s.oral_hold_days_before)
    local = datetime.combine(day, state.plan.dose_time)
    return [
        DueItem(
            "ntx.dose.held.v1" if held else "ntx.dose.due.v1",
            f"dose:{day.isoformat()}",
            to_utc(local, state.plan.timezone),
            local,
            dose_mg=mg,
            reason=SURGERY_HOLD if held else None,
        )
    ]


def oral_dose_mg(state: PlanState, day: date, s: ScheduleSettings = DEFAULT_SETTINGS) -> int | None:
    """Induction at 25 mg, then 50 mg daily, or Mon/Wed/Fri with a 50 mg bridge."""
    plan = state.plan
    induction = plan.induction_days or 0
    if (day - plan.start_date).days < induction:
        return s.induction_dose_mg
    if plan.oral_regimen == "daily":
        return s.daily_dose_mg
    if day < first_mwf_day(plan.start_date + timedelta(days=induction)):
        return s.daily_dose_mg
    return {MONDAY: s.monday_dose_mg, WEDNESDAY: s.wednesday_dose_mg, FRIDAY: s.friday_dose_mg}.get(
        day.weekday()
    )


def first_mwf_day(on_or_after: date) -> date:
    day = on_or_after
    while day.weekday() not in (MONDAY, WEDNESDAY, FRIDAY):
        day += timedelta(days=1)
    return day


def _xr(state: PlanState, day: date, s: ScheduleSettings) -> list[DueItem]:
    base = state.xr_anchor_date or state.plan.start_date
    since = (day - base).days
    first_injection = 1 if state.xr_anchor_date else 0  # the anchor itself was given
    out = []
    if since % s.xr_interval_days == 0 and since // s.xr_interval_days >= first_injection:
        out.append(_injection(state, day, s))
    if (
        since >= s.site_check_after_days
        and (since - s.site_check_after_days) % s.xr_interval_days == 0
    ):
        out.append(_notice("ntx.site_check.due.v1", "site_check", day, state.plan.timezone))
    return out


def _injection(state: PlanState, day: date, s: ScheduleSettings) -> DueItem:
    held = _held(state, day, s.xr_hold_days_before)
    local = datetime.combine(day, state.plan.dose_time)
    return DueItem(
        "ntx.injection.held.v1" if held else "ntx.injection.due.v1",
        f"injection:{day.isoformat()}",
        to_utc(local, state.plan.timezone),
        local,
        dose_mg=s.xr_dose_mg,
        reason=SURGERY_HOLD if held else None,
        requires_uds=None if held else True,
    )


def _held(state: PlanState, day: date, days_before: int) -> bool:
    return any(0 <= (p - day).days <= days_before for p in state.procedures)


# --- monitoring ---------------------------------------------------------------------


def _monitoring(state: PlanState, day: date) -> list[DueItem]:
    plan = state.plan
    zone = plan.timezone
    out = []
    if _every_n_months(plan.start_date, day, plan.lft_interval_months):
        out.append(_notice("ntx.lab.due.v1", "lab", day, zone, test="lft"))
    since = (day - plan.start_date).days
    if since > 0 and since % plan.uds_interval_days == 0:
        out.append(_notice("ntx.uds.due.v1", "uds", day, zone))
    if day == add_months(plan.start_date, plan.review_after_months):
        out.append(_notice("ntx.treatment.review.due.v1", "review", day, zone))
    return out


def _every_n_months(start: date, day: date, interval: int) -> bool:
    months = (day.year - start.year) * 12 + day.month - start.month
    return months > 0 and months % interval == 0 and add_months(start, months) == day


def add_months(start: date, months: int) -> date:
    """Same day of month, clamped to the month's end (computed from the start each
    time, so Jan 31 -> Apr 30 -> Jul 31, never drifting to the 30th)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _notice(
    type_: str, name: str, day: date, zone: str, reason: str | None = None, test: str | None = None
) -> DueItem:
    return DueItem(
        type_,
        f"{name}:{day.isoformat()}",
        local_midnight_utc(day, zone),
        day,
        test=test,
        reason=reason,
    )


def preview_lines(plan: ev.TreatmentPlan, days: int) -> list[dict]:
    """The §6 preview: items whose local date is in [start_date, start_date + days)."""
    from services.scheduler.domain.state import new_state
    from shared.topics import short_type
    from shared.types import format_local_minute, format_utc

    start = local_midnight_utc(plan.start_date, plan.timezone)
    end = local_midnight_utc(plan.start_date + timedelta(days=days), plan.timezone)
    return [
        {
            "type": short_type(i.type),
            "due_local": format_local_minute(i.due_local)
            if isinstance(i.due_local, datetime)
            else i.due_local.isoformat(),
            "due_utc": format_utc(i.due_utc),
            "dose_mg": i.dose_mg,
            "test": i.test,
            "reason": i.reason,
        }
        for i in due_items(new_state(plan), start, end)
    ]
