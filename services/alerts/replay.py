"""``ntx alerts replay``: JSON-lines events through the alert engine on a simulated
clock, with state in memory and timers in a heap: the worker's rules, not a copy.

Before an event line at ``at``, timers due strictly before ``at`` fire (an event at
a deadline counts as on time: :func:`shared.timers.fires_before_input`, the worker's
rule too); a ``"clock"`` line fires every timer due at or before its ``at``. A
deadline is never set before the moment that caused it, so output is in time order.
Input gets the worker's checks: the event models, and no recorded time more than
5 minutes after the line's ``at``. Repeated ``id``s are ignored, as the inbox does.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.alerts.domain.engine import Outcome, Timer, handle, on_timer
from services.alerts.domain.state import PatientAlertState
from shared.envelope import InvalidEvent, check_recorded_data, first_error, parse_data
from shared.events import AlertChanged
from shared.timers import fires_before_input
from shared.topics import EVENT_TYPES
from shared.types import UtcDateTime

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


@dataclass
class MemoryStore:
    """The worker's tables, in memory: states, timers, handled ids."""

    states: dict[str, PatientAlertState] = field(default_factory=dict)
    timers: dict[tuple[str, str], Timer] = field(default_factory=dict)
    heap: list[tuple[datetime, str, str]] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    adopted: int = 0

    def apply(self, patient_id: str, outcome: Outcome) -> None:
        self.states[patient_id] = outcome.state
        for key in outcome.cancel_timers:
            self.timers.pop((patient_id, key), None)
        for timer in outcome.set_timers:
            self.timers[(patient_id, timer.key)] = timer
            heapq.heappush(self.heap, (timer.due_at, patient_id, timer.key))

    def pop_due(self, until: datetime, inclusive: bool) -> tuple[str, Timer] | None:
        while self.heap:
            due_at, patient_id, key = self.heap[0]
            if due_at > until or not (inclusive or fires_before_input(due_at, until)):
                return None
            heapq.heappop(self.heap)
            timer = self.timers.get((patient_id, key))
            if timer is not None and timer.due_at == due_at:
                del self.timers[(patient_id, key)]
                return patient_id, timer
        return None


def replay_events(lines: Iterable[str]) -> Iterator[AlertMoment]:
    store = MemoryStore()
    last: datetime | None = None
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        line = _parse_line(number, text)
        if last is not None and line.at < last:
            raise ReplayError(number, "at", "lines must be in time order")
        last = line.at
        try:
            yield from _fire_timers(store, line.at, inclusive=line.type == "clock")
            if line.type != "clock":
                yield from _apply(store, number, line)
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


def _apply(store: MemoryStore, number: int, line: ReplayLine) -> Iterator[AlertMoment]:
    key = (line.type, line.id or "")
    if key in store.seen:
        return
    store.seen.add(key)
    try:
        data = parse_data(EVENT_TYPES[line.type], line.data or {})
        check_recorded_data(data, line.at)
    except InvalidEvent as exc:
        raise ReplayError(number, exc.field, exc.message) from None
    patient_id = data.patient_id  # type: ignore[attr-defined]
    outcome = handle(store.states.get(patient_id), line.type, data, line.id or "", line.at)
    store.apply(patient_id, outcome)
    store.adopted += outcome.adopted
    yield from _alerts(outcome, line.at)


def _fire_timers(store: MemoryStore, until: datetime, inclusive: bool) -> Iterator[AlertMoment]:
    while (due := store.pop_due(until, inclusive)) is not None:
        patient_id, timer = due
        outcome = on_timer(store.states[patient_id], timer, timer.due_at)
        store.apply(patient_id, outcome)
        yield from _alerts(outcome, timer.due_at)


def _alerts(outcome: Outcome, at: datetime) -> Iterator[AlertMoment]:
    for emit in outcome.emits:
        if emit.type in ALERT_TYPES:
            assert isinstance(emit.data, AlertChanged)
            yield AlertMoment(at, emit.type, emit.data)
