"""One scheduled occurrence (a due, hold or notice). Each has a stable key; a held
dose keeps the key of the dose it replaces. The worker turns it into event data
(``services.scheduler.horizon.event_data``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from shared.localtime import local_midnight_utc

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


def notice(
    type_: str,
    name: str,
    day: date,
    zone: str,
    reason: str | None = None,
    test: str | None = None,
    not_before: datetime | None = None,
) -> DueItem:
    """A date-only notice, due at local midnight (or, reported late, on arrival)."""
    due = local_midnight_utc(day, zone)
    return DueItem(
        type_,
        f"{name}:{day.isoformat()}",
        max(due, not_before) if not_before else due,
        day,
        test=test,
        reason=reason,
    )
