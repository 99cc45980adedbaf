"""Doses and injections (DESIGN.md §4.2): the oral regimens with their step-up, XR
every 28 days with its site check, and the holds before a procedure needing opioid
analgesia, which count how long each dose blocks (§4.3's coverage)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.scheduler.domain.items import SURGERY_HOLD, DueItem, notice
from services.scheduler.domain.settings import (
    DEFAULT_SETTINGS,
    FRIDAY,
    MONDAY,
    WEDNESDAY,
    ScheduleSettings,
)
from services.scheduler.domain.state import PlanState
from shared.localtime import to_utc, wall_clock


def oral(state: PlanState, day: date, s: ScheduleSettings) -> list[DueItem]:
    mg = oral_dose_mg(state, day, s)
    if mg is None:
        return []
    due, shown = _dose_time(state, day)
    held = _oral_held(state, day, due, mg, s)
    return [
        DueItem(
            "ntx.dose.held.v1" if held else "ntx.dose.due.v1",
            f"dose:{day.isoformat()}",
            due,
            shown,
            dose_mg=mg,
            reason=SURGERY_HOLD if held else None,
        )
    ]


def _dose_time(state: PlanState, day: date) -> tuple[datetime, datetime]:
    """The due moment in UTC and the wall-clock time it shows: a dose time inside a
    DST gap moves forward by the gap, and shows the moved time (§4.2 r2)."""
    zone = state.plan.timezone
    due = to_utc(datetime.combine(day, state.plan.dose_time), zone)
    return due, wall_clock(due, zone)


def oral_dose_mg(state: PlanState, day: date, s: ScheduleSettings = DEFAULT_SETTINGS) -> int | None:
    """Induction at 25 mg, then 50 mg daily; or, on Mon/Wed/Fri, 50 mg daily for the
    step-up days, then 100/100/150 from the first such weekday (50 mg bridging the
    days before it, so coverage never gaps)."""
    plan = state.plan
    induction = plan.induction_days or 0
    if (day - plan.start_date).days < induction:
        return s.induction_dose_mg
    if plan.oral_regimen == "daily":
        return s.daily_dose_mg
    stepped = plan.start_date + timedelta(days=induction + (plan.mwf_step_days or 0))
    if day < first_mwf_day(stepped):
        return s.daily_dose_mg
    return {MONDAY: s.monday_dose_mg, WEDNESDAY: s.wednesday_dose_mg, FRIDAY: s.friday_dose_mg}.get(
        day.weekday()
    )


def first_mwf_day(on_or_after: date) -> date:
    day = on_or_after
    while day.weekday() not in (MONDAY, WEDNESDAY, FRIDAY):
        day += timedelta(days=1)
    return day


def _oral_held(state: PlanState, day: date, due: datetime, mg: int, s: ScheduleSettings) -> bool:
    """Held when due on or before a procedure day P and its blockade, counted from
    its due time, would last past dose time on P-3 (a 150 mg Friday dose before a
    Tuesday operation blocks until Monday: held)."""
    blockade_ends = due + s.blockade_by_mg[mg]
    for procedure in state.procedures:
        if day > procedure:
            continue
        hold_from, _ = _dose_time(state, procedure - timedelta(days=s.oral_hold_days_before))
        if blockade_ends > hold_from:
            return True
    return False


def xr(state: PlanState, day: date, s: ScheduleSettings) -> list[DueItem]:
    out = []
    if _injection_day(state, day, s):
        out.append(_injection(state, day, s))
    if _site_check_after(state, day - timedelta(days=s.site_check_after_days), s):
        out.append(notice("ntx.site_check.due.v1", "site_check", day, state.plan.timezone))
    return out


def _site_check_after(state: PlanState, injected: date, s: ScheduleSettings) -> bool:
    """After an injection that was due (never a held one), or the one given that
    re-anchored the plan."""
    due = _injection_day(state, injected, s) and not _xr_held(state, injected, s)
    return due or injected == state.xr_anchor_date


def _injection_day(state: PlanState, day: date, s: ScheduleSettings) -> bool:
    """Scheduled: every 28 days from the start, or from the last injection given
    (the given one itself is not due again)."""
    base = state.xr_anchor_date or state.plan.start_date
    since = (day - base).days
    first = 1 if state.xr_anchor_date else 0
    return since % s.xr_interval_days == 0 and since // s.xr_interval_days >= first


def _injection(state: PlanState, day: date, s: ScheduleSettings) -> DueItem:
    held = _xr_held(state, day, s)
    due, shown = _dose_time(state, day)
    return DueItem(
        "ntx.injection.held.v1" if held else "ntx.injection.due.v1",
        f"injection:{day.isoformat()}",
        due,
        shown,
        dose_mg=s.xr_dose_mg,
        reason=SURGERY_HOLD if held else None,
        requires_uds=None if held else True,
    )


def _xr_held(state: PlanState, day: date, s: ScheduleSettings) -> bool:
    """An injection due within 30 days before a procedure is held (seed: 24-30 days)."""
    return any(0 <= (p - day).days <= s.xr_hold_days_before for p in state.procedures)
