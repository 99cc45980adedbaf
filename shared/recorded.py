"""The door's clinical check on time (DESIGN.md §3.3 [r2]): a dose, result or stop
is refused when it is recorded after the receiving service's "now", whoever applies
it (the worker's door, ``ntx alerts replay``, ``ntx send``, the gateway)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from shared.envelope import Event, InvalidEvent

#: DESIGN.md §3.3 [r2]: a recorded time more than 5 minutes after the receiving
#: service's clock is an input error (the clock skew tolerated, no more).
FUTURE_SKEW = timedelta(minutes=5)
RECORDED_AT = ("administered_at", "collected_at", "stopped_at", "recorded_at")


def check_recorded_times(event: Event, now: datetime) -> None:
    """A dose, result or stop recorded after "now" is refused, naming the field: a
    far-future administration would otherwise stretch blockade coverage for years."""
    check_recorded_data(event.data, now)


def check_recorded_data(data: BaseModel, now: datetime) -> None:
    """:func:`check_recorded_times` on an event's data alone: the one check the worker,
    ``ntx alerts replay`` and ``ntx send`` apply."""
    fields = type(data).model_fields
    for name in RECORDED_AT:
        value = getattr(data, name) if name in fields else None
        if isinstance(value, datetime) and value > now + FUTURE_SKEW:
            raise InvalidEvent(f"data.{name}", f"more than {FUTURE_SKEW} in the future")
