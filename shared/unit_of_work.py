"""The unit of work a batch runs in: one transaction, one "now" (read once by whoever
begins it), the patients' locks, the inbox claims, and the events, timers and rows its
handlers cause, written together when it ends (:meth:`Units.begin`).

A whole batch of messages (or of due timers) shares one unit, so a batch costs a
handful of statements instead of several per message. Timer operations coalesce per
``(patient, key)``: the last set or cancel wins, as it would have one by one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any, Generic, TypeVar

import asyncpg
from pydantic import BaseModel

from shared import inbox
from shared.envelope import Envelope, build
from shared.plumbing import PgPlumbing, Plumbing
from shared.settings import Settings
from shared.timers import TimerRow

R = TypeVar("R")
#: Builds a service's repositories for a unit of work (over its ``store``).
Repositories = Callable[["UnitOfWork[Any]"], Any]


@dataclass
class UnitOfWork(Generic[R]):
    """What a handler may do inside its transaction: read and write its own tables
    through its repositories (``repos``), emit events, set or cancel timers.

    ``store`` is the plumbing underneath (PostgreSQL, or memory in handler tests and
    the replay); handlers never touch it. ``cause`` is the message being handled (set
    per message by batch handlers); it gives emitted events their ``correlationid``
    and ``causationid``."""

    store: Plumbing
    now: datetime
    source: str
    repositories: Repositories | None = None
    cause: Envelope | None = None
    settings: Settings | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    timer_ops: dict[tuple[str, str], TimerRow | None] = field(default_factory=dict)
    deferred: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(list))
    #: The W3C trace context each cause's effects carry, by the cause's (source, id).
    traces: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    # --- what handlers do ---------------------------------------------------------

    @cached_property
    def repos(self) -> R:
        """The service's repositories, bound to this unit (a savepoint gets its own)."""
        assert self.repositories is not None, "this service has no repositories"
        made: R = self.repositories(self)
        return made

    def emit(
        self, type_: str, data: BaseModel | dict[str, Any], *, id_: str | None = None
    ) -> dict[str, Any]:
        cause = self.cause
        envelope = build(
            type_,
            data,
            source=self.source,
            time=self.now,
            id_=id_,
            correlationid=(cause.correlationid or cause.id) if cause else None,
            causationid=cause.id if cause else None,
            trace=self.traces.get((cause.source, cause.id)) if cause else None,
        )
        self.events.append(envelope)
        return envelope

    def set_timer(self, timer: TimerRow) -> None:
        self.timer_ops[(timer.patient_id, timer.key)] = timer

    def cancel_timer(self, patient_id: str, key: str) -> None:
        self.timer_ops[(patient_id, key)] = None

    def defer(self, sql: str, row: tuple[Any, ...]) -> None:
        """Queue ``row`` for ``sql`` (an INSERT of an append-only table that handlers
        never read back); all rows of one statement go in one ``executemany``. For
        PostgreSQL repositories: an in-memory one appends to its own table."""
        self.deferred[sql].append(row)

    # --- what the runtime does around them ------------------------------------------

    async def lock_patients(self, patients: Iterable[str]) -> None:
        """Wait for the patients' locks (a batch of input: it must not skip anyone)."""
        await self.store.lock_patients(patients)

    async def try_lock_patients(self, patients: Iterable[str]) -> set[str]:
        """The patients whose locks were free (a timer round: busy ones wait a round)."""
        return await self.store.try_lock_patients(patients)

    async def claim_inbox(self, claims: list[tuple[str, str, str]]) -> list[inbox.Seen]:
        """One claim per ``(source, id, digest)``, in order (:func:`inbox.claim_many`)."""
        return await self.store.claim_inbox(claims)

    async def claim_due_timers(
        self, patients: list[str], *, before_input: bool = False
    ) -> list[TimerRow]:
        """The due timers of ``patients`` (locked), cancelled here: handled once."""
        due = await self.store.claim_due_timers(self.now, patients, before_input=before_input)
        for row in due:
            self.cancel_timer(row.patient_id, row.key)
        return due

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[UnitOfWork]:
        """A unit inside this one: what it queues is written when it ends, or rolled
        back with it if it fails, leaving this unit as it was."""
        async with self.store.savepoint():
            inner = replace(self, cause=None, events=[], timer_ops={}, deferred=defaultdict(list))
            yield inner
            await inner.flush()

    async def flush(self) -> int:
        """Write everything queued; returns how many events went to the outbox."""
        cancelled = [k for k, op in self.timer_ops.items() if op is None]
        await self.store.cancel_timers(cancelled)
        await self.store.set_timers([op for op in self.timer_ops.values() if op])
        await self.store.append(self.deferred)
        await self.store.enqueue(self.events)
        written = len(self.events)
        self.events, self.timer_ops, self.deferred = [], {}, defaultdict(list)
        return written


#: The name handlers take their unit of work by (``handle(ctx, events)``).
Context = UnitOfWork


@dataclass(frozen=True)
class Units:
    """Where a service's units of work begin: its pool, the ``source`` of the events
    they emit, the ``schema`` their patients' locks are scoped to, its settings, and
    how its repositories are made (:attr:`shared.spec.ServiceSpec.repositories`)."""

    pool: asyncpg.Pool
    source: str
    schema: str
    settings: Settings
    repositories: Repositories | None = None

    @asynccontextmanager
    async def begin(self, now: datetime) -> AsyncIterator[UnitOfWork]:
        """One transaction, seeing one ``now``; what the unit queued is written before
        the commit, and nothing of it if anything fails."""
        async with self.pool.acquire() as conn, conn.transaction():
            uow: UnitOfWork[Any] = UnitOfWork(
                PgPlumbing(conn, self.schema),
                now,
                self.source,
                self.repositories,
                settings=self.settings,
            )
            yield uow
            await uow.flush()
