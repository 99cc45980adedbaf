"""Field types every contract shares: pseudonymous ids, zones, UTC and local times."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
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
    value = value.astimezone(UTC)
    spec = "%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return value.strftime(spec)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


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
    return value.strftime("%Y-%m-%dT%H:%M")


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
    "format_utc",
    "format_local_minute",
    "date",
]
