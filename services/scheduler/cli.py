"""``ntx schedule preview FILE [--days N]``: one plan's due events, one JSON object a
line, from the same code the scheduler worker runs."""

from __future__ import annotations

import json

from pydantic import ValidationError

from services.scheduler.domain import preview_lines
from shared.cliutil import bad_input, read_text, validation_errors
from shared.events import TreatmentPlan

COMMAND = "schedule preview"
MAX_DAYS = 3660


def preview(path: str, days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        return bad_input(COMMAND, [("--days", f"must be between 1 and {MAX_DAYS}")])
    try:
        plan = TreatmentPlan.model_validate_json(read_text(path))
    except OSError as exc:
        return bad_input(COMMAND, [("FILE", exc.strerror or str(exc))])
    except ValidationError as exc:
        return bad_input(COMMAND, validation_errors(exc))
    for line in preview_lines(plan, days):
        print(json.dumps(line))
    return 0
