"""Field types every contract shares: pseudonymous ids, zones, UTC and local times, and
the plausibility bounds that keep hostile values (year 1, year 9999, 10**400 mg) out of
the rules: refused by name as input errors, never an OverflowError deep in a handler."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

PATIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

#: Models are strict: unknown fields are rejected, nothing is coerced from the wrong type.
STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)

PatientId = Annotated[str, Field(pattern=PATIENT_ID_PATTERN, min_length=1, max_length=64)]

_ZONES = frozenset(available_timezones())
#: DESIGN.md §4.2 [r2]: tzdata ships these names, but none is a patient's zone:
#: ``localtime`` is the host's, ``posixrules`` a template, ``Factory`` a placeholder.
NOT_PATIENT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def _check_zone(name: str) -> str:
    if name in NOT_PATIENT_ZONES:
        raise ValueError(f"{name!r} is not a patient's IANA time zone (e.g. Europe/London)")
    if name not in _ZONES:
        raise ValueError(f"unknown IANA time zone {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - tzdata mismatch
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


TimeZoneName = Annotated[
    str,
    AfterValidator(_check_zone),
    WithJsonSchema({"type": "string", "description": "IANA time zone name, e.g. Europe/London"}),
]


def format_utc(value: datetime) -> str:
    """RFC 3339 in UTC with a trailing Z; microseconds only when present."""
    value = value.astimezone(UTC).replace(tzinfo=None)
    # isoformat, not strftime: %Y does not pad years before 1000 to four digits
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30:00+01:00 is before year 1 in UTC
        raise ValueError("outside the representable range of dates") from None


UtcDateTime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]

_LOCAL_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")


def _parse_local_minute(value: object) -> object:
    if isinstance(value, str):
        if not _LOCAL_MINUTE.match(value):
            raise ValueError("expected a local date-time YYYY-MM-DDTHH:MM")
        return datetime.strptime(value, "%Y-%m-%dT%H:%M")
    return value


def format_local_minute(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(timespec="minutes")


#: A wall-clock moment in the patient's zone, to the minute, with no offset.
LocalDateTime = Annotated[
    datetime,
    BeforeValidator(_parse_local_minute),
    PlainSerializer(format_local_minute, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$"}),
]

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _parse_hhmm(value: object) -> object:
    if isinstance(value, str):
        if not _HHMM.match(value):
            raise ValueError("expected a local time HH:MM (00:00-23:59)")
        return time.fromisoformat(value)
    return value


LocalTime = Annotated[
    time,
    BeforeValidator(_parse_hhmm),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}),
]


def _json_number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


#: Exact decimal for clinical thresholds; a JSON number on the wire.
ExactNumber = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False, max_digits=12),
    PlainSerializer(_json_number, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "minimum": 0}),
]

PositiveExactNumber = Annotated[
    Decimal,
    Field(gt=0, allow_inf_nan=False, max_digits=12),
    PlainSerializer(_json_number, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0}),
]

# --- plausibility bounds (issue 18) ---------------------------------------------------

#: Nothing NTX plans, schedules or is told about happened before this. Naltrexone XR
#: was approved for opioid dependence in 2010 (FDA) and NTX went live in 2026; 2000
#: leaves a decade of margin. A forged plan starting in 1500 once made the scheduler
#: emit 222,054 due items.
PLAUSIBLE_EARLIEST = date(2000, 1, 1)
#: Nor anything further ahead of the wall clock than this: schedules are materialised
#: 48 h ahead and procedures booked months ahead. The bound keeps every date
#: computation far from datetime's year 9999 limit.
PLAUSIBLE_YEARS_AHEAD = 10
#: A patient's history (last opioid use, screens, liver panels) may predate NTX, but
#: not a living patient.
HISTORY_EARLIEST = date(1900, 1, 1)


def plausible_until(today: date | None = None) -> date:
    """The last plausible date: :data:`PLAUSIBLE_YEARS_AHEAD` years after ``today``
    (the wall clock's: the bound judges plausibility, not clinical timing)."""
    today = today or datetime.now(UTC).date()
    return today + timedelta(days=365 * PLAUSIBLE_YEARS_AHEAD + PLAUSIBLE_YEARS_AHEAD // 4)


def _within(earliest: date):  # type: ignore[no-untyped-def]
    def check(value: date) -> date:
        day = value.date() if isinstance(value, datetime) else value
        if day < earliest:
            raise ValueError(f"implausible: before {earliest.isoformat()}")
        if day > plausible_until():
            raise ValueError(f"implausible: more than {PLAUSIBLE_YEARS_AHEAD} years ahead")
        return value

    return check


#: A plan's, a schedule's or an event's date: within the plausible window.
PlausibleDate = Annotated[date, AfterValidator(_within(PLAUSIBLE_EARLIEST))]
#: A date of the patient's history: after 1900, not years ahead.
HistoryDate = Annotated[date, AfterValidator(_within(HISTORY_EARLIEST))]
PlausibleUtcDateTime = Annotated[UtcDateTime, AfterValidator(_within(PLAUSIBLE_EARLIEST))]
PlausibleLocalDateTime = Annotated[LocalDateTime, AfterValidator(_within(PLAUSIBLE_EARLIEST))]

#: No naltrexone dose exceeds the 380 mg XR injection (label); oral doses are at most
#: 150 mg. A bound well above both refuses typos and 10**400 without judging the
#: clinical value sets, which the rules check.
MAX_DOSE_MG = 1000
DoseMg = Annotated[int, Field(gt=0, le=MAX_DOSE_MG)]

#: Codes (reason, advisory, alert codes) and short free text: bounded, so no value
#: grows a stored document or a log line past reason.
Code = Annotated[str, Field(min_length=1, max_length=64)]
Identifier = Annotated[str, Field(min_length=1, max_length=128)]
Text = Annotated[str, Field(max_length=500)]

__all__ = [
    "STRICT",
    "PATIENT_ID_PATTERN",
    "PatientId",
    "TimeZoneName",
    "UtcDateTime",
    "LocalDateTime",
    "LocalTime",
    "ExactNumber",
    "PositiveExactNumber",
    "PLAUSIBLE_EARLIEST",
    "PLAUSIBLE_YEARS_AHEAD",
    "HISTORY_EARLIEST",
    "plausible_until",
    "PlausibleDate",
    "HistoryDate",
    "PlausibleUtcDateTime",
    "PlausibleLocalDateTime",
    "MAX_DOSE_MG",
    "DoseMg",
    "Code",
    "Identifier",
    "Text",
    "format_utc",
    "format_local_minute",
    "date",
]
