"""The tables every service has under its unit of work (patient locks, inbox, outbox,
timers, dead letters), as one seam with two implementations: :class:`PgPlumbing`
here, over the PostgreSQL modules, and :class:`shared.memory.MemoryPlumbing` for
handler tests and the replay. ``tests/integration/test_plumbing_contract.py`` runs
one suite on both, so the in-memory one cannot drift from the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import asyncpg

from shared import deadletter, inbox, locks, outbox, timers
from shared.deadletter import DeadLetter
from shared.inbox import Seen
from shared.timers import TimerRow

if TYPE_CHECKING:
    from shared.unit_of_work import UnitOfWork


class OutboxRow(NamedTuple):
    """A queued event as the relay reads it: ids follow the order rows were written."""

    id: int
    topic: str
    key: str | None
    value: bytes


class StoredLetter(NamedTuple):
    """A dead letter as kept: the reason, and the original key and value as they came."""

    id: str
    topic: str
    reason: str
    field: str | None
    original_key: bytes | None
    original: bytes | None


class Plumbing(Protocol):
    """What a unit of work, the relay and the dead letters do to a service's tables."""

    async def lock_patients(self, patients: Iterable[str]) -> None:
        """Wait for every patient's lock (held to the end of the transaction)."""

    async def try_lock_patients(self, patients: Iterable[str]) -> set[str]:
        """Take the locks that are free now; the patients whose lock is held."""

    async def claim_inbox(self, claims: list[tuple[str, str, str]]) -> list[Seen]:
        """One claim per ``(source, id, digest)``, in order (:func:`inbox.claim_many`)."""

    async def set_timers(self, rows: list[TimerRow]) -> None: ...

    async def cancel_timers(self, keys: list[tuple[str, str]]) -> None: ...

    async def due_patients(self, now: datetime, limit: int) -> tuple[list[str], bool]: ...

    async def claim_due_timers(
        self, now: datetime, patients: list[str], *, before_input: bool = False
    ) -> list[TimerRow]: ...

    async def enqueue(self, envelopes: list[dict[str, Any]]) -> None: ...

    async def unsent(self, limit: int) -> list[OutboxRow]: ...

    async def mark_sent(self, ids: list[int]) -> None: ...

    async def store_letter(
        self, letter: DeadLetter, key: bytes | None, raw: bytes | None
    ) -> bool: ...

    async def letters(self) -> list[StoredLetter]: ...

    async def append(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        """Rows of append-only tables no handler reads back, by statement."""

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: what happens inside it is undone if it fails."""


class PgPlumbing:
    """:class:`Plumbing` on one connection, inside its caller's transaction; ``schema``
    scopes the patients' advisory locks."""

    def __init__(self, conn: asyncpg.Connection, schema: str):
        self.conn = conn
        self.schema = schema

    async def lock_patients(self, patients: Iterable[str]) -> None:
        await locks.lock_patients(self.conn, self.schema, patients)

    async def try_lock_patients(self, patients: Iterable[str]) -> set[str]:
        return await locks.try_lock_patients(self.conn, self.schema, patients)

    async def claim_inbox(self, claims: list[tuple[str, str, str]]) -> list[Seen]:
        return await inbox.claim_many(self.conn, claims)

    async def set_timers(self, rows: list[TimerRow]) -> None:
        await timers.set_timers(self.conn, rows)

    async def cancel_timers(self, keys: list[tuple[str, str]]) -> None:
        await timers.cancel_many(self.conn, keys)

    async def due_patients(self, now: datetime, limit: int) -> tuple[list[str], bool]:
        return await timers.due_patients(self.conn, now, limit)

    async def claim_due_timers(
        self, now: datetime, patients: list[str], *, before_input: bool = False
    ) -> list[TimerRow]:
        return await timers.claim_due(self.conn, now, patients, before_input=before_input)

    async def enqueue(self, envelopes: list[dict[str, Any]]) -> None:
        await outbox.enqueue_events(self.conn, envelopes)

    async def unsent(self, limit: int) -> list[OutboxRow]:
        rows = await outbox.unsent(self.conn, limit)  # the relay's age column is not needed
        return [OutboxRow(r["id"], r["topic"], r["key"], r["value"]) for r in rows]

    async def mark_sent(self, ids: list[int]) -> None:
        await outbox.mark_sent(self.conn, ids)

    async def store_letter(self, letter: DeadLetter, key: bytes | None, raw: bytes | None) -> bool:
        return await deadletter.store(self.conn, letter, key, raw)

    async def letters(self) -> list[StoredLetter]:
        rows = await self.conn.fetch(
            "SELECT id::text, topic, reason, field, original_key, original FROM dead_letters"
            " ORDER BY received_at, id"
        )
        return [StoredLetter(*r) for r in rows]

    async def append(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        for sql, values in rows.items():
            await self.conn.executemany(sql, values)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.conn.transaction():
            yield


class PgRepository:
    """Base of a service's PostgreSQL repository: its unit of work (for ``now`` and
    deferred rows) and that unit's connection, inside the unit's transaction."""

    def __init__(self, uow: UnitOfWork[Any]):
        assert isinstance(uow.store, PgPlumbing), "a PostgreSQL repository on another store"
        self.uow, self.conn = uow, uow.store.conn
