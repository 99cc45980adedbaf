"""What is due when (DESIGN.md §4.2), computed day by day in the patient's zone.

Doses and injections are wall-clock times built as local date-times and converted
to UTC (never "+ 86,400 s"); date-only notices fall due at local midnight. Each
occurrence has a stable key, and a held dose keeps the key of the dose it replaces.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from services.scheduler.domain.items import POST_PROCEDURE, SURGERY_HOLD, DueItem, notice
from services.scheduler.domain.medication import first_mwf_day, oral, oral_dose_mg, xr
from services.scheduler.domain.settings import (
    DEFAULT_SETTINGS,
    ELEVATED_TRANSAMINASES,
    ScheduleSettings,
)
from services.scheduler.domain.state import PlanState, new_state
from shared import events as ev
from shared.localtime import local_midnight_utc, local_today

__all__ = [
    "POST_PROCEDURE",
    "SURGERY_HOLD",
    "DueItem",
    "add_months",
    "due_items",
    "first_mwf_day",
    "items_on",
    "oral_dose_mg",
    "preview_items",
    "schedule_ends",
]


def due_items(
    state: PlanState, start_utc: datetime, end_utc: datetime, s: ScheduleSettings = DEFAULT_SETTINGS
) -> list[DueItem]:
    """Every item with ``start_utc <= due_utc < end_utc``, in due order."""
    zone = state.plan.timezone
    first = max(local_today(start_utc, zone) - timedelta(days=1), state.plan.start_date)
    last = local_today(end_utc, zone) + timedelta(days=1)
    candidates = [item for day in _days(first, last) for item in items_on(state, day, s)]
    late = _late_reinduction(state, s)
    found = {
        item.key: item
        for item in [*candidates, *late]
        if start_utc <= item.due_utc < end_utc and not _after_stop(state, item)
    }
    return sorted(found.values(), key=lambda i: (i.due_utc, i.type, i.key))


def schedule_ends(state: PlanState, s: ScheduleSettings = DEFAULT_SETTINGS) -> datetime | None:
    """The moment after which nothing more falls due (a stop, or the re-induction
    notice after a procedure), or None while the schedule runs on."""
    ends = []
    if state.stopped_at_utc is not None:
        ends.append(state.stopped_at_utc)
    if state.suspended_after is not None:
        last = state.suspended_after + timedelta(days=s.reinduction_after_days + 1)
        end = local_midnight_utc(last, state.plan.timezone)
        if state.reinduction_not_before is not None:  # the late notice falls due after
            end = max(end, state.reinduction_not_before + timedelta(microseconds=1))
        ends.append(end)
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
        return _reinduction(state, s) if day == _reinduction_day(state, s) else []
    medication = oral(state, day, s) if plan.formulation == "oral" else xr(state, day, s)
    return [*medication, *_monitoring(state, day, s)]


def _reinduction_day(state: PlanState, s: ScheduleSettings) -> date | None:
    suspended = state.suspended_after
    return None if suspended is None else suspended + timedelta(days=s.reinduction_after_days)


def _reinduction(state: PlanState, s: ScheduleSettings) -> list[DueItem]:
    day = _reinduction_day(state, s)
    if day is None:
        return []
    return [
        notice(
            "ntx.reinduction.required.v1",
            "reinduction",
            day,
            state.plan.timezone,
            POST_PROCEDURE,
            not_before=state.reinduction_not_before,
        )
    ]


def _late_reinduction(state: PlanState, s: ScheduleSettings) -> list[DueItem]:
    """A procedure reported after its re-induction day began: the notice, due on
    arrival, whatever stretch of days is being materialised."""
    return _reinduction(state, s) if state.reinduction_not_before is not None else []


# --- monitoring ---------------------------------------------------------------------


def _monitoring(state: PlanState, day: date, s: ScheduleSettings) -> list[DueItem]:
    plan = state.plan
    zone = plan.timezone
    out = []
    if _lft_due(state, day, s):
        out.append(notice("ntx.lab.due.v1", "lab", day, zone, test="lft"))
    since = (day - plan.start_date).days
    if since > 0 and since % plan.uds_interval_days == 0:
        out.append(notice("ntx.uds.due.v1", "uds", day, zone))
    if _every_n_months(plan.start_date, day, plan.review_after_months):
        out.append(notice("ntx.treatment.review.due.v1", "review", day, zone))
    return out


def _lft_due(state: PlanState, day: date, s: ScheduleSettings) -> bool:
    """Every ``lft_interval_months``; monthly with the elevated-transaminases advisory,
    and after a result at >= 3x ULN during treatment (DESIGN.md §4.2 r2)."""
    plan = state.plan
    monthly = ELEVATED_TRANSAMINASES in plan.advisories or (
        state.lft_monthly_from is not None and day > state.lft_monthly_from
    )
    interval = s.lft_monthly_interval_months if monthly else plan.lft_interval_months
    return _every_n_months(plan.start_date, day, interval)


def _every_n_months(start: date, day: date, interval: int) -> bool:
    months = (day.year - start.year) * 12 + day.month - start.month
    return months > 0 and months % interval == 0 and add_months(start, months) == day


def add_months(start: date, months: int) -> date:
    """Same day of month, clamped to the month's end (computed from the start each
    time, so Jan 31 -> Apr 30 -> Jul 31, never drifting to the 30th)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def preview_items(plan: ev.TreatmentPlan, days: int) -> list[DueItem]:
    """The §6 preview's items: those whose local date is in [start_date, start_date +
    days), for the plan as written (no procedure reported since, no stop)."""
    start = local_midnight_utc(plan.start_date, plan.timezone)
    end = local_midnight_utc(plan.start_date + timedelta(days=days), plan.timezone)
    return due_items(new_state(plan), start, end)
