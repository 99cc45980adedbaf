"""``ntx alerts replay``: JSON-lines events through the alerts worker's own handlers
(:mod:`services.alerts.service`) on the in-memory unit of work
(:class:`shared.memory.MemoryUnits`, :class:`services.alerts.repository.MemoryAlertStates`)
and a simulated clock: the worker's code, not a copy.

Before an event line at ``at``, timers due strictly before ``at`` fire (an event at
a deadline counts as on time: :func:`shared.timers.fires_before_input`, the worker's
rule too); a ``"clock"`` line fires every timer due at or before its ``at``. A
deadline is never set before the moment that caused it, so output is in time order.
Input gets the worker's checks: the event models, and no recorded time more than
5 minutes after the line's ``at``. Repeated ``id``s are ignored, as the inbox does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.alerts.repository import MemoryAlertStates
from services.alerts.service import SPEC
from shared.envelope import (
    Envelope,
    Event,
    InvalidEvent,
    first_error,
    parse_data,
)
from shared.events import AlertChanged
from shared.inbox import Seen
from shared.memory import MemoryUnits, run_to_end
from shared.recorded import check_recorded_data
from shared.timers import fires_before_input
from shared.topics import EVENT_TYPES
from shared.types import UtcDateTime

#: The ``source`` of a replayed line's envelope (a line names none).
SOURCE = "ntx/replay"
ALERT_TYPES = {"ntx.alert.raised.v1", "ntx.alert.escalated.v1", "ntx.alert.resolved.v1"}


@dataclass(frozen=True)
class AlertMoment:
    """An alert event and the simulated moment it happened."""

    at: datetime
    type: str
    data: AlertChanged


class ReplayLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: UtcDateTime
    type: str
    id: str | None = Field(default=None, max_length=128)
    data: dict | None = None


class ReplayError(ValueError):
    def __init__(self, line: int, field: str, message: str):
        super().__init__(f"line {line}: {field}: {message}")


def replay_events(lines: Iterable[str]) -> Iterator[AlertMoment]:
    units = MemoryUnits(SPEC.source, MemoryAlertStates)
    last: datetime | None = None
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        line = _parse_line(number, text)
        if last is not None and line.at < last:
            raise ReplayError(number, "at", "lines must be in time order")
        last = line.at
        try:
            yield from _fire_timers(units, line.at, inclusive=line.type == "clock")
            if line.type != "clock":
                yield from _apply(units, number, line)
        except OverflowError:  # a deadline past the end of the calendar
            raise ReplayError(number, "at", "too late in the calendar") from None


def _parse_line(number: int, text: str) -> ReplayLine:
    try:
        line = ReplayLine.model_validate_json(text)
    except ValidationError as exc:
        err = first_error(exc)
        raise ReplayError(number, err.field, err.message) from None
    if line.type != "clock" and line.type not in EVENT_TYPES:
        raise ReplayError(number, "type", f"unknown event type {line.type!r}")
    if line.type != "clock" and (line.id is None or line.data is None):
        raise ReplayError(number, "id" if line.id is None else "data", "required")
    return line


def _apply(units: MemoryUnits, number: int, line: ReplayLine) -> list[AlertMoment]:
    return run_to_end(_handle(units, number, line))


async def _handle(units: MemoryUnits, number: int, line: ReplayLine) -> list[AlertMoment]:
    """The line through the worker's handler in one in-memory unit at ``line.at``.
    A repeated ``id`` of the same type is skipped (the inbox, keyed here by type
    since a line has no source), whatever its body."""
    async with units.begin(line.at) as uow:
        [seen] = await uow.claim_inbox([(line.type, line.id or "", "")])
        if seen is not Seen.NEW:
            return []
        event = _event(number, line)
        if SPEC.acts_on(event.type):
            await SPEC.handle(uow, [event])
    return await _published(units, line.at)


def _event(number: int, line: ReplayLine) -> Event:
    """The line as the worker's door would hand it on: typed data, no recorded time
    after the line's ``at``; the envelope only carries it."""
    try:
        data = parse_data(EVENT_TYPES[line.type], line.data or {})
        check_recorded_data(data, line.at)
    except InvalidEvent as exc:
        raise ReplayError(number, exc.field, exc.message) from None
    envelope = Envelope.model_construct(
        specversion="1.0",
        id=line.id,
        source=SOURCE,
        type=line.type,
        time=line.at,
        subject=data.patient_id,  # type: ignore[attr-defined]
        data=line.data,
    )
    return Event(envelope=envelope, data=data)


def _fire_timers(units: MemoryUnits, until: datetime, inclusive: bool) -> Iterator[AlertMoment]:
    """Each deadline due by ``until`` fires at its own moment, earliest first."""
    while (timer := units.store.next_timer()) is not None:
        if timer.due_at > until or not (inclusive or fires_before_input(timer.due_at, until)):
            return
        yield from run_to_end(_fire(units, timer.patient_id, timer.due_at))


async def _fire(units: MemoryUnits, patient_id: str, at: datetime) -> list[AlertMoment]:
    async with units.begin(at) as uow:
        due = await uow.claim_due_timers([patient_id])
        assert SPEC.on_timers is not None
        await SPEC.on_timers(uow, due)
    return await _published(units, at)


async def _published(units: MemoryUnits, at: datetime) -> list[AlertMoment]:
    """The alert events the unit wrote to the outbox, stamped sent."""
    rows = await units.store.unsent(len(units.store.tables.outbox))
    await units.store.mark_sent([r.id for r in rows])
    moments = []
    for row in rows:
        emitted = json.loads(row.value)
        if emitted["type"] in ALERT_TYPES:
            data = AlertChanged.model_validate(emitted["data"])
            moments.append(AlertMoment(at, emitted["type"], data))
    return moments
