"""The scheduler's output (§3.3): doses, injections and dated notices due or held."""

from __future__ import annotations

from typing import Literal

from shared.events.base import Data, OralDoseMg, XrDoseMg
from shared.types import (
    Code,
    PlausibleDate,
    PlausibleLocalDateTime,
    PlausibleUtcDateTime,
)


class DoseDue(Data):
    due_utc: PlausibleUtcDateTime
    due_local: PlausibleLocalDateTime
    dose_mg: OralDoseMg


class DoseHeld(Data):
    due_utc: PlausibleUtcDateTime
    due_local: PlausibleLocalDateTime
    dose_mg: OralDoseMg
    reason: Code


class InjectionDue(Data):
    due_utc: PlausibleUtcDateTime
    due_local: PlausibleLocalDateTime
    dose_mg: XrDoseMg
    requires_uds: bool


class InjectionHeld(Data):
    due_utc: PlausibleUtcDateTime
    due_local: PlausibleLocalDateTime
    reason: Code


class DateDue(Data):
    """Lab, screen, site check, review and re-induction notices: a local date."""

    due_local: PlausibleDate


class LabDue(DateDue):
    test: Literal["lft"] = "lft"
