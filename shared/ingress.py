"""The door every inbound message passes before a transaction opens: whatever can be
refused from the message's own bytes and the receiving clock is refused here, naming
the field, so nothing a sender controls reaches a database statement unchecked.

A null value (a tombstone), bytes that are not a CloudEvent, NUL characters or
unpaired surrogates anywhere, oversize messages, implausible dates and an envelope
``time`` from the future all become :class:`Refused` (then dead letters). The worker
and ``ntx send`` apply the same checks (:func:`check`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared import inbox
from shared.envelope import (
    Envelope,
    Event,
    InvalidEvent,
    check_recorded_times,
    parse_envelope,
    typed,
)

#: An envelope stamped further ahead of the receiving clock than this is refused. A
#: request stamped 9999-12-31 was once decided, and every later genuine request of
#: that patient was then recorded as superseded. Five minutes covers clock skew
#: between well-run hosts (the same tolerance DESIGN.md §3.3 gives recorded times).
FUTURE_TIME_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Message:
    """One record off a topic, as bytes (``value`` None: a tombstone)."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Refused:
    reason: str
    field: str | None


@dataclass(frozen=True)
class Admitted:
    event: Event
    digest: str


def admit(
    message: Message, now: datetime, acts_on: Callable[[str], bool]
) -> Admitted | Refused | None:
    """The checked event, a refusal, or None for a well-formed message of a type this
    service does not act on (its body is for the services that do to judge)."""
    try:
        if message.value is None:
            raise InvalidEvent("value", "null (a tombstone): a CloudEvent is required")
        envelope = checked_envelope(
            message.value, now, topic=message.topic, key=message.key, require_key=True
        )
        if not acts_on(envelope.type):
            return None
        event = typed(envelope)
        check_recorded_times(event, now)
    except InvalidEvent as exc:
        return Refused(exc.message, exc.field)
    except Exception as exc:  # a parser defect must not drop the message
        return Refused(f"unreadable ({type(exc).__name__})", "message")
    return Admitted(event, inbox.digest(message.value))


def checked_envelope(
    raw: bytes,
    now: datetime,
    *,
    topic: str | None = None,
    key: bytes | None = None,
    require_key: bool = False,
) -> Envelope:
    envelope = parse_envelope(raw, expected_topic=topic, key=key, require_key=require_key)
    check_time(envelope, now)
    return envelope


def check(raw: bytes, now: datetime) -> Event:
    """What the worker's door checks, for any type: ``ntx send`` uses it."""
    event = typed(checked_envelope(raw, now))
    check_recorded_times(event, now)
    return event


def check_time(envelope: Envelope, now: datetime) -> None:
    if envelope.time > now + FUTURE_TIME_SKEW:
        minutes = int(FUTURE_TIME_SKEW.total_seconds() // 60)
        raise InvalidEvent("time", f"more than {minutes} minutes in the future")
