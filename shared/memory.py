"""The unit of work's plumbing in memory: the same inbox, outbox, timers, patient
locks and dead letters as :class:`shared.plumbing.PgPlumbing`, as Python tables, so
handlers run in unit tests and in ``ntx alerts replay`` with no broker and no
database. A unit that fails leaves the tables as they were, as a rollback would.

Rows are replaced, never changed in place (tuples, strings, frozen rows; documents
as JSON text), so a snapshot is a shallow copy of each table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from shared.deadletter import DeadLetter, announcement
from shared.inbox import Seen
from shared.plumbing import OutboxRow, StoredLetter
from shared.records import record
from shared.settings import Settings
from shared.timers import TimerRow, fires_before_input
from shared.unit_of_work import Repositories, UnitOfWork

T = TypeVar("T")


@dataclass
class Tables:
    inbox: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Rows not yet sent, by id; a row stamped sent is dropped at once (the
    #: housekeeping PostgreSQL needs for published rows, done on the spot).
    outbox: dict[int, OutboxRow] = field(default_factory=dict)
    last_outbox_id: int = 0
    timers: dict[tuple[str, str], TimerRow] = field(default_factory=dict)
    letters: dict[str, StoredLetter] = field(default_factory=dict)
    #: A service's own tables (its in-memory repositories'), by name.
    own: dict[str, dict[Any, Any]] = field(default_factory=dict)

    def copy(self) -> Tables:
        return Tables(
            dict(self.inbox),
            dict(self.outbox),
            self.last_outbox_id,
            dict(self.timers),
            dict(self.letters),
            {name: dict(rows) for name, rows in self.own.items()},
        )


class MemoryPlumbing:
    """:class:`shared.plumbing.Plumbing` in memory. One process, one unit at a time:
    every patient's lock is free."""

    def __init__(self) -> None:
        self.tables = Tables()

    def table(self, name: str) -> dict[Any, Any]:
        """A service's own table ``name`` (made empty on first use)."""
        return self.tables.own.setdefault(name, {})

    async def lock_patients(self, patients: Iterable[str]) -> None:
        return None

    async def try_lock_patients(self, patients: Iterable[str]) -> set[str]:
        return set(patients)

    async def claim_inbox(self, claims: list[tuple[str, str, str]]) -> list[Seen]:
        out = []
        for source, id_, digest in claims:
            stored = self.tables.inbox.get((source, id_))
            if stored is None:
                self.tables.inbox[(source, id_)] = digest
                out.append(Seen.NEW)
            else:
                out.append(Seen.REPEAT if stored == digest else Seen.CONFLICT)
        return out

    async def set_timers(self, rows: list[TimerRow]) -> None:
        self.tables.timers.update({(t.patient_id, t.key): t for t in rows})

    async def cancel_timers(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            self.tables.timers.pop(key, None)

    async def due_patients(self, now: datetime, limit: int) -> tuple[list[str], bool]:
        due = sorted((t for t in self.tables.timers.values() if t.due_at <= now), key=_order)
        return list(dict.fromkeys(t.patient_id for t in due[:limit])), len(due) >= limit

    async def claim_due_timers(
        self, now: datetime, patients: list[str], *, before_input: bool = False
    ) -> list[TimerRow]:
        wanted = set(patients)
        return sorted(
            (
                t
                for t in self.tables.timers.values()
                if t.patient_id in wanted
                and (fires_before_input(t.due_at, now) if before_input else t.due_at <= now)
            ),
            key=_order,
        )

    def next_timer(self) -> TimerRow | None:
        """The timer due first (the replay steps its clock to it)."""
        return min(self.tables.timers.values(), key=_order, default=None)

    async def enqueue(self, envelopes: list[dict[str, Any]]) -> None:
        for topic, key, value in map(record, envelopes):
            self._queue(topic, key, value)

    def _queue(self, topic: str, key: str | None, value: bytes) -> None:
        self.tables.last_outbox_id += 1
        row = OutboxRow(self.tables.last_outbox_id, topic, key, value)
        self.tables.outbox[row.id] = row

    async def unsent(self, limit: int) -> list[OutboxRow]:
        return list(islice(self.tables.outbox.values(), limit))

    async def mark_sent(self, ids: list[int]) -> None:
        for id_ in ids:
            self.tables.outbox.pop(id_, None)

    async def store_letter(self, letter: DeadLetter, key: bytes | None, raw: bytes | None) -> bool:
        if letter.id in self.tables.letters:
            return False
        kept = StoredLetter(letter.id, letter.topic, letter.reason, letter.field, key, raw)
        self.tables.letters[letter.id] = kept
        self._queue(*announcement(letter))
        return True

    async def letters(self) -> list[StoredLetter]:
        return list(self.tables.letters.values())

    async def append(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        if any(rows.values()):
            raise TypeError("SQL rows in memory: an in-memory repository keeps its own rows")

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        saved = self.tables.copy()
        try:
            yield
        except BaseException:
            self.tables = saved
            raise


class MemoryRepository:
    """Base of a service's in-memory repository: its tables live in the unit's
    :class:`MemoryPlumbing`, so they roll back with it."""

    def __init__(self, uow: UnitOfWork[Any]):
        assert isinstance(uow.store, MemoryPlumbing), "an in-memory repository on another store"
        self.store = uow.store


def _order(timer: TimerRow) -> tuple[datetime, str, str]:
    return timer.due_at, timer.patient_id, timer.key


@dataclass
class MemoryUnits:
    """Where in-memory units of work begin (the counterpart of
    :class:`shared.unit_of_work.Units`): one :class:`MemoryPlumbing` shared by every
    unit, and the service's in-memory repositories."""

    source: str
    repositories: Repositories | None = None
    settings: Settings = field(default_factory=Settings)
    store: MemoryPlumbing = field(default_factory=MemoryPlumbing)

    @asynccontextmanager
    async def begin(self, now: datetime) -> AsyncIterator[UnitOfWork[Any]]:
        """One unit seeing ``now``: written at its end, or undone if it fails."""
        async with self.store.savepoint():
            uow: UnitOfWork[Any] = UnitOfWork(
                self.store, now, self.source, self.repositories, settings=self.settings
            )
            yield uow
            await uow.flush()


def run_to_end(step: Awaitable[T]) -> T:
    """The result of ``step``, a coroutine on memory alone, run here without an event
    loop: it never waits on I/O, so it ends at its first step (or this says so). The
    replay is a plain iterator; this lets it call the async handlers."""
    coroutine = step.__await__()
    try:
        next(coroutine)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("an in-memory unit of work waited on I/O")
