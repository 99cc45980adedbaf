"""Transactional outbox (DESIGN.md §5): events are rows written with the state change
that caused them; :class:`Relay` publishes them in order with acks=all and stamps them.

Delivery is at-least-once: a crash between the broker's ack and the stamp re-sends
the row, and consumers drop the repeat through their inbox.

A row the broker will never take (too large, say) is handed to ``on_unpublishable``
(the runtime dead-letters it) and stamped, so it cannot hold back the rows behind
it. Each round stamps every row acknowledged before the first one that failed for
now (the broker away), so the rows ahead of a failure are never sent again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiokafka import errors as kafka

from shared.records import Record, encode, record

__all__ = [
    "Relay",
    "encode",
    "enqueue",
    "enqueue_events",
    "enqueue_many",
    "mark_sent",
    "unsent",
]

Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]


async def enqueue(conn: asyncpg.Connection, topic: str, key: str | None, value: bytes) -> None:
    await conn.execute(
        "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)", topic, key, value
    )


async def enqueue_events(conn: asyncpg.Connection, envelopes: list[dict[str, Any]]) -> None:
    """Queue CloudEvents dicts on their registered topics, keyed by patient."""
    if not envelopes:
        return
    await enqueue_many(conn, [record(e) for e in envelopes])


async def enqueue_many(conn: asyncpg.Connection, rows: list[tuple[str, str | None, bytes]]) -> None:
    """``(topic, key, value)`` rows in one statement; ids follow the list's order."""
    if rows:
        topics, keys, values = zip(*rows, strict=True)
        await conn.execute(
            "INSERT INTO outbox (topic, key, value)"
            " SELECT t, k, v FROM unnest($1::text[], $2::text[], $3::bytea[])"
            " WITH ORDINALITY AS r(t, k, v, n) ORDER BY n",
            list(topics),
            list(keys),
            list(values),
        )


UNSENT_FIRST = "SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1"


async def unsent(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """The oldest ``limit`` rows not yet published, in the order they were written:
    ``(id, topic, key, value, age)``, age in seconds since the row was written."""
    return await conn.fetch(
        "SELECT id, topic, key, value,"
        " extract(epoch FROM clock_timestamp() - created_at)::float8 AS age"
        " FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
        limit,
    )


async def mark_sent(conn: asyncpg.Connection, ids: list[int]) -> None:
    if ids:
        await conn.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", ids)


#: Errors that say the broker will never take this record, whenever it is sent: the
#: record is at fault, not the broker's state.
UNPUBLISHABLE: tuple[type[BaseException], ...] = (
    kafka.MessageSizeTooLargeError,
    kafka.RecordTooLargeError,
    kafka.RecordListTooLargeError,
    kafka.InvalidTopicError,
    kafka.InvalidTimestampError,
    kafka.PolicyViolationError,
    kafka.UnsupportedForMessageFormatError,
    TypeError,
    ValueError,
)

Row = Record
#: Sends rows in order; one result per row: None (acknowledged) or the error.
SendRows = Callable[[list[Row]], Awaitable[list[BaseException | None]]]
#: Called with the relay's connection, inside its transaction, for a row the broker
#: will never take: ``(conn, topic, key, value, error)``.
OnUnpublishable = Callable[
    [asyncpg.Connection, str, str | None, bytes, BaseException], Awaitable[None]
]


def _lock_key(schema: str) -> int:
    return int(hashlib.sha256(f"ntx-relay:{schema}".encode()).hexdigest()[:15], 16)


class Relay:
    """Publishes unsent outbox rows, a round per :meth:`run_once` (the runtime runs it
    in a supervised loop). One relay at a time per schema (advisory lock) so a
    patient's events leave in the order they were written, even with two workers."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        send_rows: SendRows,
        *,
        schema: str,
        on_unpublishable: OnUnpublishable,
        batch: int = 500,
        on_published: Callable[[list[float]], None] | None = None,
    ):
        self.pool = pool
        self.send_rows = send_rows
        self.on_unpublishable = on_unpublishable
        self.batch = batch
        self.lock_key = _lock_key(schema)
        #: Told, per round, how long each published row waited (seconds).
        self.on_published = on_published

    async def run_once(self) -> int:
        async with self.pool.acquire() as conn:
            # one cheap look first: an idle relay costs a round trip, not a transaction
            # (the form the partial index outbox_unsent serves; EXISTS plans a scan)
            if await conn.fetchval(UNSENT_FIRST) is None:
                return 0
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self.lock_key):
                return 0
            rows = await unsent(conn, self.batch)
            if not rows:
                return 0
            fetched = time.monotonic()
            results = await self.send_rows([(r["topic"], r["key"], r["value"]) for r in rows])
            done, failure = await self._settle(conn, rows, results)
        if self.on_published is not None and done:
            waited = time.monotonic() - fetched
            self.on_published([max(0.0, r["age"]) + waited for r in rows[:done]])
        if failure is not None:
            raise failure  # after the stamps are committed: the relay's loop backs off
        return done

    async def _settle(
        self, conn: asyncpg.Connection, rows: list[Any], results: list[BaseException | None]
    ) -> tuple[int, BaseException | None]:
        """Stamp the rows acknowledged (or unpublishable) before the first failure."""
        stamped: list[int] = []
        failure = None
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, UNPUBLISHABLE):
                await self.on_unpublishable(conn, row["topic"], row["key"], row["value"], result)
            elif result is not None:
                failure = result
                break
            stamped.append(row["id"])
        await mark_sent(conn, stamped)
        return len(stamped), failure
