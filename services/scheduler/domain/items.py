"""One scheduled occurrence (a due, hold or notice) and how it becomes event data.
Each has a stable key; a held dose keeps the key of the dose it replaces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel

from shared.localtime import local_midnight_utc
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
