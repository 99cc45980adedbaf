"""The door every inbound message passes before a transaction opens: whatever can be
refused from the message's own bytes and the receiving clock is refused here, naming
the field, so nothing a sender controls reaches a database statement unchecked.

A null value (a tombstone), bytes that are not a CloudEvent, NUL characters or
unpaired surrogates anywhere, oversize messages, implausible dates and an envelope
``time`` from the future all become :class:`Refused` (then dead letters). The worker
and ``ntx send`` apply the same checks (:func:`check`).

Both modes of the CloudEvents Kafka binding come in (:mod:`shared.kafka_binding`); a
record whose ``ntx-type`` header names a type this service does not act on is
skipped without its body being parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared import inbox, kafka_binding
from shared.envelope import (
    MAX_EXTENSION_CHARS,
    TRACE_ATTRIBUTES,
    Envelope,
    Event,
    InvalidEvent,
    parse_envelope,
    typed,
)
from shared.recorded import check_recorded_times
from shared.records import encode
from shared.topics import event_type

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
    headers: tuple[tuple[str, bytes], ...] = ()


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
        came = kafka_binding.inbound(message.value, message.headers)
        if came.declared_type and _not_ours(came.declared_type, message.topic, acts_on):
            return None
        envelope = checked_envelope(
            came.value, now, topic=message.topic, key=message.key, require_key=True
        )
        if not acts_on(envelope.type):
            return None
        event = typed(with_trace(envelope, came.trace))
        check_recorded_times(event, now)
    except InvalidEvent as exc:
        return Refused(exc.message, exc.field)
    except Exception as exc:  # a parser defect must not drop the message
        return Refused(f"unreadable ({type(exc).__name__})", "message")
    return Admitted(event, content_digest(came.value))


def as_structured(message: Message) -> Message:
    """The message as a structured-mode record: a binary-mode one rebuilt as the one
    CloudEvent the service read, so what is dead-lettered (and later replayed with
    ``ntx dlq replay``) is self-contained. Anything else is returned as it came."""
    if message.value is None or not message.headers:
        return message
    try:
        came = kafka_binding.inbound(message.value, message.headers)
    except InvalidEvent:
        return message  # its headers are what is wrong: keep the record as it came
    return replace(message, value=came.value, headers=()) if came.binary else message


def _not_ours(declared: str, topic: str, acts_on: Callable[[str], bool]) -> bool:
    """A header names a registered type of this topic that the service ignores: its
    body is for the services that act on it. An unknown or misplaced type is left to
    the full check, which refuses it by name."""
    try:
        kind = event_type(declared)
    except KeyError:
        return False
    return kind.topic.name == topic and not acts_on(declared)


def with_trace(envelope: Envelope, headers: dict[str, str]) -> Envelope:
    """The envelope carrying the trace context its record's headers gave, unless it
    carries its own (the event's attributes win over transport metadata)."""
    if any(a in envelope.extensions for a in TRACE_ATTRIBUTES):
        return envelope
    given = {k: v for k, v in headers.items() if len(v) <= MAX_EXTENSION_CHARS}
    return envelope.model_copy(update=given) if given else envelope


#: A body naming a trace attribute (a quick look; the digest then parses it).
_MAYBE_TRACED = re.compile(rb'"trace(parent|state)"')


def content_digest(value: bytes) -> str:
    """The inbox digest: trace context is transport, not content, so the same event
    sent again under a new span is a repeat, not an id reused with another body. A
    body without it is digested as it came (as before trace context was carried)."""
    if not _MAYBE_TRACED.search(value):
        return inbox.digest(value)
    body = json.loads(value)
    for name in TRACE_ATTRIBUTES:
        body.pop(name, None)
    return inbox.digest(encode(body))


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
