"""``ntx schedule preview FILE [--days N]``: one plan's due events, one JSON object a
line, from the same code the scheduler worker runs."""

from __future__ import annotations

import json

from services.scheduler.domain import preview_lines
from shared.cliutil import BadInput, bad_input, read_model
from shared.events import TreatmentPlan

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
