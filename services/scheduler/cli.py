"""``ntx schedule preview FILE [--days N]``: one plan's due events, one JSON object a
line, from the same code the scheduler worker runs."""

from __future__ import annotations

import json
from datetime import datetime

from services.scheduler.domain import DueItem, preview_items
from shared.cliutil import BadInput, bad_input, read_model
from shared.events import TreatmentPlan
from shared.topics import short_type
from shared.types import format_local_minute, format_utc

COMMAND = "schedule preview"
MAX_DAYS = 3660


def preview(path: str, days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        return bad_input(COMMAND, [("--days", f"must be between 1 and {MAX_DAYS}")])
    try:
        plan = read_model(path, TreatmentPlan)
    except BadInput as exc:
        return bad_input(COMMAND, exc.errors)
    try:
        lines = preview_lines(plan, days)
    except OverflowError:  # a start at the end of the calendar: its days do not exist
        return bad_input(COMMAND, [("start_date", f"too late in the calendar for {days} days")])
    for line in lines:
        print(json.dumps(line))
    return 0


def preview_lines(plan: TreatmentPlan, days: int) -> list[dict]:
    """The §6 preview, one dict per line."""
    return [preview_line(item) for item in preview_items(plan, days)]


def preview_line(item: DueItem) -> dict:
    """``{"type", "due_local", "due_utc", "dose_mg", "test", "reason"}`` (DESIGN.md §6):
    ``due_local`` to the minute for doses and injections, a date otherwise."""
    local = item.due_local
    return {
        "type": short_type(item.type),
        "due_local": format_local_minute(local)
        if isinstance(local, datetime)
        else local.isoformat(),
        "due_utc": format_utc(item.due_utc),
        "dose_mg": item.dose_mg,
        "test": item.test,
        "reason": item.reason,
    }
