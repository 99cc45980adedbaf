"""Dates of the intake decision (DESIGN.md §4.1 r2): which observations may be used
on the evaluation date, and the earliest start date: never before ``as_of``, and
never inside a planned procedure's hold window, so a re-evaluation on it is not
deferred for a procedure again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from services.intake.domain.settings import IntakeSettings
from shared.events import IntakeRequested


class IntakeInputError(ValueError):
    """Input that is well-formed but cannot be evaluated (e.g. a date in the future)."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


@dataclass(frozen=True)
class Finding:
    code: str
    outcome: str  # "rejected" | "deferred"
    message: str
    earliest: date | None = None


def check_request(req: IntakeRequested, as_of: date) -> None:
    """Observations cannot postdate the evaluation; planned procedures may."""
    dated = {
        "last_opioid_use.date": req.last_opioid_use.date,
        "urine_drug_screen.date": req.urine_drug_screen and req.urine_drug_screen.date,
        "naloxone_challenge.date": req.naloxone_challenge and req.naloxone_challenge.date,
        "liver_function.date": req.liver_function and req.liver_function.date,
    }
    errors = [
        (f, f"after the evaluation date {as_of}") for f, d in dated.items() if d and d > as_of
    ]
    if errors:
        raise IntakeInputError(errors)


def later(day: date, days: int, field: str) -> date:
    """``day`` + ``days``, or an input error naming the field that cannot move so far
    (a date at the end of the calendar)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        raise IntakeInputError([(field, "too late in the calendar to count from")]) from None


def procedure_window(req: IntakeRequested, s: IntakeSettings) -> int:
    return s.procedure_window_xr_days if req.formulation == "xr" else s.procedure_window_oral_days


def _analgesia_dates(req: IntakeRequested) -> list[date]:
    return sorted({p.date for p in req.planned_procedures if p.requires_opioid_analgesia})


def _held_by(day: date, req: IntakeRequested, s: IntakeSettings) -> list[date]:
    """The procedures whose hold window contains a start on ``day``."""
    window = procedure_window(req, s)
    return [p for p in _analgesia_dates(req) if 0 <= (p - day).days <= window]


def procedure_start(req: IntakeRequested, as_of: date, s: IntakeSettings) -> date | None:
    """None when no procedure defers a start on ``as_of``; else the candidate date:
    the latest such procedure + the post-operative opioid-free window."""
    within = _held_by(as_of, req, s)
    if not within:
        return None
    return later(max(within), s.post_procedure_free_days, "planned_procedures.date")


def past_procedure_holds(day: date, req: IntakeRequested, s: IntakeSettings) -> date:
    """``day``, moved past every procedure whose hold window would contain it."""
    while within := _held_by(day, req, s):
        day = later(max(within), s.post_procedure_free_days, "planned_procedures.date")
    return day


def earliest_start(
    findings: list[Finding], req: IntakeRequested, as_of: date, s: IntakeSettings
) -> date | None:
    """The latest dated start among the deferrals, or None if any has none; never
    before ``as_of``, and moved past the hold windows of later procedures."""
    dates = [f.earliest for f in findings if f.outcome == "deferred"]
    known = [d for d in dates if d is not None]
    if len(known) < len(dates):
        return None
    return past_procedure_holds(max([as_of, *known]), req, s)
