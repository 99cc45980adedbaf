"""Transactional outbox (DESIGN.md §5): events are rows written with the state change
that caused them; :class:`Relay` publishes them in order with acks=all and stamps them.

Delivery is at-least-once: a crash between the broker's ack and the stamp re-sends
the row, and consumers drop the repeat through their inbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from shared.topics import event_type

log = logging.getLogger("ntx.outbox")

Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]


def encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


async def enqueue(conn: asyncpg.Connection, topic: str, key: str | None, value: bytes) -> None:
    await conn.execute(
        "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)", topic, key, value
    )


async def enqueue_events(conn: asyncpg.Connection, envelopes: list[dict[str, Any]]) -> None:
    """Queue CloudEvents dicts on their registered topics, keyed by patient."""
    if not envelopes:
        return
    await enqueue_many(
        conn, [(event_type(e["type"]).topic.name, e["subject"], encode(e)) for e in envelopes]
    )


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


def _lock_key(schema: str) -> int:
    return int(hashlib.sha256(f"ntx-relay:{schema}".encode()).hexdigest()[:15], 16)


class Relay:
    """Publishes unsent outbox rows. One relay at a time per schema (advisory lock) so
    a patient's events leave in the order they were written, even with two workers."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        send_batch: Callable[[list[tuple[str, bytes | None, bytes]]], Awaitable[None]],
        *,
        schema: str,
        batch: int = 500,
    ):
        self.pool = pool
        self.send_batch = send_batch
        self.batch = batch
        self.lock_key = _lock_key(schema)
        self.wakeup = asyncio.Event()
        self.published = 0

    async def run_once(self) -> int:
        async with self.pool.acquire() as conn:
            # one cheap look first: an idle relay costs a round trip, not a transaction
            # (the form the partial index outbox_unsent serves; EXISTS plans a scan)
            if await conn.fetchval(UNSENT_FIRST) is None:
                return 0
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self.lock_key):
                return 0
            rows = await conn.fetch(
                "SELECT id, topic, key, value FROM outbox WHERE sent_at IS NULL"
                " ORDER BY id LIMIT $1",
                self.batch,
            )
            if not rows:
                return 0
            await self.send_batch([(r["topic"], _key(r["key"]), r["value"]) for r in rows])
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        self.published += len(rows)
        return len(rows)

    async def run(self, stopping: asyncio.Event, poll_s: float = 0.05) -> None:
        backoff = poll_s
        while not stopping.is_set():
            try:
                sent = await self.run_once()
                backoff = poll_s
            except Exception as exc:  # broker or database away: keep rows, retry
                log.warning(
                    "relay retry", extra={"error": type(exc).__name__, "backoff_s": backoff}
                )
                sent = 0
                backoff = min(backoff * 2 if backoff >= 0.2 else 0.2, 5.0)
            if sent == 0:
                await _wait(self.wakeup, stopping, backoff)


def _key(key: str | None) -> bytes | None:
    return key.encode() if key is not None else None


async def _wait(wakeup: asyncio.Event, stopping: asyncio.Event, timeout: float) -> None:
    wakeup.clear()
    waiters = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
