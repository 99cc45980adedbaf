"""A service's reliable core, independent of faust: validate each inbound message
(bad ones become dead letters), run its handler in one transaction with the inbox
claim and the outbox rows it causes, fire durable timers, and relay the outbox.

The faust app (:mod:`shared.app`) feeds :meth:`Runtime.process` from its agents;
tests and the simulator can call the same methods directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from shared import db, inbox, metrics, outbox, timers
from shared.clock import Clock
from shared.deadletter import dead_letter
from shared.envelope import Envelope, Event, InvalidEvent, build, check_recorded_times, parse
from shared.settings import Settings
from shared.timers import TimerRow
from shared.topics import DLQ, Topic

log = logging.getLogger("ntx.runtime")


@dataclass
class Context:
    """What a handler may do inside its one transaction: read and write its own
    tables through ``conn``, emit events, and set or cancel timers."""

    conn: asyncpg.Connection
    now: datetime
    source: str
    cause: Envelope | None = None
    settings: Settings | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    timers_set: list[TimerRow] = field(default_factory=list)
    timers_cancelled: list[tuple[str, str]] = field(default_factory=list)

    def emit(self, type_: str, data: BaseModel, *, id_: str | None = None) -> dict[str, Any]:
        correlation = (self.cause.correlationid or self.cause.id) if self.cause else None
        envelope = build(
            type_,
            data,
            source=self.source,
            time=self.now,
            id_=id_,
            correlationid=correlation,
            causationid=self.cause.id if self.cause else None,
        )
        self.events.append(envelope)
        return envelope

    def set_timer(self, timer: TimerRow) -> None:
        self.timers_set.append(timer)

    def cancel_timer(self, patient_id: str, key: str) -> None:
        self.timers_cancelled.append((patient_id, key))

    async def flush(self) -> None:
        for patient_id, key in self.timers_cancelled:
            await timers.cancel_timers(self.conn, patient_id, [key])
        await timers.set_timers(self.conn, self.timers_set)
        await outbox.enqueue_events(self.conn, self.events)


Handler = Callable[[Context, Event], Awaitable[None]]
TimerHandler = Callable[[Context, TimerRow], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    topics: tuple[Topic, ...]
    migrations: Path
    handle: Handler
    on_timer: TimerHandler | None = None
    #: Extra background loops, e.g. the scheduler's horizon materialiser.
    loops: tuple[Callable[[Runtime], Awaitable[None]], ...] = ()

    @property
    def source(self) -> str:
        return f"ntx/{self.name}"


class Runtime:
    def __init__(
        self, spec: ServiceSpec, settings: Settings, clock: Clock, *, schema: str | None = None
    ):
        self.spec = spec
        self.settings = settings
        self.clock = clock
        self.schema = schema or spec.name
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relay: outbox.Relay | None = None
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        url = self.settings.database_url_for(self.spec.name)
        await db.wait_for_database(url)
        await db.migrate(url, self.schema, self.spec.migrations)
        self.pool = await db.create_pool(
            url, self.schema, min_size=self.settings.db_pool_min, max_size=self.settings.db_pool_max
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=False,  # Tansu has no InitProducerId; the inbox dedupes instead
            linger_ms=2,
            **self.settings.kafka_client_options(),
        )
        await self.producer.start()
        self.relay = outbox.Relay(
            self.pool, self._send_batch, schema=self.schema, batch=self.settings.relay_batch
        )
        self._spawn(self.relay.run(self.stopping, self.settings.relay_poll_s))
        if self.spec.on_timer is not None:
            self._spawn(self._timer_loop())
        for loop in self.spec.loops:
            self._spawn(loop(self))
        self.ready.set()
        log.info("service started", extra={"service": self.spec.name, "schema": self.schema})

    async def stop(self) -> None:
        self.stopping.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        for task in self._tasks:
            task.cancel()
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()
        log.info("service stopped", extra={"service": self.spec.name})

    def _spawn(self, coro: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    async def _send_batch(self, rows: list[tuple[str, bytes | None, bytes]]) -> None:
        assert self.producer is not None
        futures = [await self.producer.send(topic, value, key=key) for topic, key, value in rows]
        await asyncio.gather(*futures)
        metrics.PUBLISHED.labels(self.spec.name).inc(len(rows))

    def context(
        self, conn: asyncpg.Connection, now: datetime, cause: Envelope | None = None
    ) -> Context:
        return Context(conn, now, self.spec.source, cause=cause, settings=self.settings)

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wakeup.set()

    # --- inbound messages --------------------------------------------------------

    async def process(
        self, topic: str, partition: int | None, offset: int | None, key: bytes | None, raw: bytes
    ) -> str:
        """Handle one message; returns ``handled``, ``repeat`` or ``dead``. Retries while
        the database is away, so a message is never acknowledged unhandled."""
        await self.ready.wait()
        try:
            event = parse(raw, expected_topic=topic, key=key, require_key=True)
            check_recorded_times(event, self.clock.now())
            return await self._retrying(self._handle, event, raw)
        except InvalidEvent as exc:  # bad shape, or refused by the service's rules
            reason, field_ = exc.message, exc.field
        except _IdReused:
            reason, field_ = "id reused with a different body", "id"
        except Exception as exc:  # a defect, not bad input: keep the message for operators
            # The type only at error level: exception messages may quote input values.
            log.error("handler failed", extra={"topic": topic, "error": type(exc).__name__})
            log.debug("handler failure detail", exc_info=True)
            reason, field_ = f"internal error {type(exc).__name__}; replay once fixed", None
        await self._retrying(self._dead_letter, topic, partition, offset, key, raw, reason, field_)
        return "dead"

    async def _handle(self, event: Event, raw: bytes) -> str:
        assert self.pool is not None
        env = event.envelope
        async with self.pool.acquire() as conn, conn.transaction():
            seen = await inbox.claim(conn, env.source, env.id, inbox.digest(raw))
            if seen is inbox.Seen.CONFLICT:
                raise _IdReused()
            if seen is inbox.Seen.REPEAT:
                metrics.CONSUMED.labels(self.spec.name, "repeat").inc()
                return "repeat"
            ctx = self.context(conn, self.clock.now(), cause=env)
            await self.spec.handle(ctx, event)
            await ctx.flush()
        metrics.CONSUMED.labels(self.spec.name, "handled").inc()
        log.info("handled", extra={"type": env.type, "patient_id": env.subject, "event_id": env.id})
        self.wake_relay()
        return "handled"

    async def _retrying(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        delay = 0.2
        while True:
            try:
                return await func(*args)
            except db.TRANSIENT_DB_ERRORS as exc:
                # Even while stopping: an unhandled message must not be acknowledged.
                log.warning("database unavailable, retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _dead_letter(
        self,
        topic: str,
        partition: int | None,
        offset: int | None,
        key: bytes | None,
        raw: bytes,
        reason: str,
        field_: str | None,
    ) -> None:
        assert self.pool is not None
        letter = dead_letter(
            self.spec.name, topic, partition, offset, key, raw, reason, field_, self.clock.now()
        )
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                'INSERT INTO dead_letters (id, topic, partition, "offset", key, reason, field, original, received_at)'
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING true",
                uuid.UUID(letter.id),
                topic,
                partition,
                offset,
                letter.key,
                reason,
                field_,
                raw,
                letter.received_at,
            )
            if fresh:
                await outbox.enqueue(
                    conn, DLQ.name, letter.key, outbox.encode(letter.model_dump(mode="json"))
                )
        metrics.CONSUMED.labels(self.spec.name, "dead").inc()
        log.warning(
            "dead letter",
            extra={"service": self.spec.name, "topic": topic, "field": field_, "reason": reason},
        )
        self.wake_relay()

    # --- timers --------------------------------------------------------------------

    async def fire_due_timers(self) -> int:
        """Fire every timer due now, a batch per transaction; returns how many fired."""
        assert self.pool is not None and self.spec.on_timer is not None
        fired = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                now = self.clock.now()
                due = await timers.claim_due(conn, now, self.settings.timer_batch)
                for row in due:
                    ctx = self.context(conn, now)
                    await timers.cancel_timers(conn, row.patient_id, [row.key])
                    await self.spec.on_timer(ctx, row)
                    await ctx.flush()
            fired += len(due)
            if due:
                self.wake_relay()
            if len(due) < self.settings.timer_batch:
                return fired

    async def _timer_loop(self) -> None:
        await self.run_loop(self.fire_due_timers, self.settings.timer_poll_s)

    async def run_loop(self, step: Callable[[], Awaitable[int]], poll_s: float) -> None:
        """Run ``step`` until stopping, sleeping when idle, backing off on errors."""
        backoff = poll_s
        while not self.stopping.is_set():
            try:
                busy = await step()
                backoff = poll_s
            except Exception as exc:
                # The type only: messages of validation errors may quote input values.
                log.warning(
                    "loop retry", extra={"service": self.spec.name, "error": type(exc).__name__}
                )
                log.debug("loop failure detail", exc_info=True)
                busy, backoff = 0, min(max(backoff * 2, 0.2), 5.0)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=backoff)

    async def health(self) -> dict[str, Any]:
        status = {"service": self.spec.name, "ready": self.ready.is_set(), "database": False}
        if self.pool is not None:
            try:
                async with self.pool.acquire(timeout=2) as conn:
                    status["database"] = await conn.fetchval("SELECT true")
                    status["outbox_pending"] = await conn.fetchval(
                        "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
                    )
            except Exception:
                status["database"] = False
        status["ok"] = bool(status["ready"] and status["database"])
        return status


class _IdReused(Exception):
    """Raised inside the transaction to roll back a message whose id was reused."""
