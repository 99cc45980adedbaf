"""Local wall-clock time to UTC, DST-safe (DESIGN.md §4.2): a local time that does not
exist moves forward by the gap; an ambiguous one takes its first occurrence."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def to_utc(local: datetime, zone: str) -> datetime:
    """``local`` is naive wall time in ``zone``. Never adds 86,400 s to get a day."""
    # fold=0 picks the first occurrence of an ambiguous time; for a time inside a
    # gap it applies the offset from before the gap, which lands exactly the gap's
    # length later on the wall clock: the forward move the design asks for.
    return local.replace(tzinfo=ZoneInfo(zone), fold=0).astimezone(UTC)


def local_midnight_utc(day: date, zone: str) -> datetime:
    return to_utc(datetime.combine(day, time(0, 0)), zone)


def local_today(now: datetime, zone: str) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def wall_clock(moment: datetime, zone: str) -> datetime:
    """The naive local wall-clock time of a UTC ``moment``: what a due time built by
    :func:`to_utc` shows (a time in a DST gap shows as the moved time, 03:30 for 02:30)."""
    return moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
