"""``ntx intake evaluate FILE [--as-of DATE]``: the decision JSON of one request,
from the same rules the intake worker runs."""

from __future__ import annotations

import json

from pydantic import TypeAdapter, ValidationError

from services.intake.domain.rules import IntakeInputError, evaluate
from services.intake.domain.settings import DEFAULT_SETTINGS
from shared.cliutil import BadInput, bad_input, read_model
from shared.clock import SystemClock
from shared.events import IntakeDecided, IntakeRequested
from shared.localtime import local_today
from shared.types import PlausibleDate

COMMAND = "intake evaluate"
#: the evaluation date is bounded like every date of a plan (year 9999 would overflow)
_AS_OF = TypeAdapter(PlausibleDate)
#: DESIGN.md §6: the decision JSON's keys, in order.
DECISION_KEYS = ("decision", "reasons", "earliest_start_date", "advisories", "plan")


def evaluate_command(path: str, as_of: str | None) -> int:
    try:
        request = read_model(path, IntakeRequested)
    except BadInput as exc:
        return bad_input(COMMAND, exc.errors)
    today = local_today(SystemClock().now(), request.timezone)
    try:
        day = _AS_OF.validate_strings(as_of) if as_of else today
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        return bad_input(COMMAND, [("--as-of", f"expected a date YYYY-MM-DD ({reason})")])
    ahead = DEFAULT_SETTINGS.evaluation_max_days_ahead
    if (day - today).days > ahead:
        return bad_input(COMMAND, [("--as-of", f"more than {ahead} days after today ({today})")])
    try:
        decided = evaluate(request, day)
    except IntakeInputError as exc:
        return bad_input(COMMAND, exc.errors)
    print(json.dumps(decision_json(decided), indent=2))
    return 0


def decision_json(decided: IntakeDecided) -> dict:
    """The §6 decision JSON: the decided event's data without its bookkeeping."""
    d = decided.model_dump(mode="json")
    return {k: d[k] for k in DECISION_KEYS}
