"""A service's reliable core, independent of faust: validate each inbound message
(bad ones become dead letters), run its handler in one transaction with the inbox
claim and the outbox rows it causes, fire durable timers, and relay the outbox.

Messages come in batches (one transaction per batch, a few statements per batch
rather than per message). A handler that refuses or fails on one message rolls the
batch back; the batch is then handled message by message, so only that message is
dead-lettered. The faust app (:mod:`shared.app`) feeds :meth:`Runtime.process_batch`;
tests and tools can call it, or :meth:`Runtime.process` for one message, directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import db, housekeeping, inbox, locks, metrics, outbox, timers
from shared.clock import Clock
from shared.context import Context
from shared.deadletter import dead_letter
from shared.envelope import (
    Envelope,
    Event,
    InvalidEvent,
    check_recorded_times,
    parse_envelope,
    typed,
)
from shared.settings import Settings
from shared.timers import TimerRow
from shared.topics import DLQ, Topic

log = logging.getLogger("ntx.runtime")

__all__ = ["Context", "Message", "Runtime", "ServiceSpec", "each", "each_timer"]


@dataclass(frozen=True)
class Message:
    """One record off a topic, as bytes: the runtime validates it."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class _Refused:
    reason: str
    field: str | None


@dataclass(frozen=True)
class _Parsed:
    event: Event
    digest: str


Handler = Callable[[Context, Event], Awaitable[None]]
BatchHandler = Callable[[Context, list[Event]], Awaitable[None]]
TimerHandler = Callable[[Context, TimerRow], Awaitable[None]]
TimersHandler = Callable[[Context, list[TimerRow]], Awaitable[None]]


def each(handle: Handler) -> BatchHandler:
    """A batch handler that handles the events one after another."""

    async def handle_batch(ctx: Context, events: list[Event]) -> None:
        for event in events:
            ctx.cause = event.envelope
            await handle(ctx, event)

    return handle_batch


def each_timer(on_timer: TimerHandler) -> TimersHandler:
    async def on_timers(ctx: Context, due: list[TimerRow]) -> None:
        for row in due:
            await on_timer(ctx, row)

    return on_timers


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    topics: tuple[Topic, ...]
    migrations: Path
    handle: BatchHandler
    #: Event types the handler acts on; others on its topics are validated and
    #: ignored (None: every type goes to the handler).
    handles: frozenset[str] | None = None
    on_timers: TimersHandler | None = None
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
            linger_ms=2,
            **self.settings.producer_options(),  # acks=all, idempotent
        )
        await self.producer.start()
        self.relay = outbox.Relay(
            self.pool, self._send_batch, schema=self.schema, batch=self.settings.relay_batch
        )
        self._spawn(self.relay.run(self.stopping, self.settings.relay_poll_s))
        if self.spec.on_timers is not None:
            self._spawn(self.run_loop(self.fire_due_timers, self.settings.timer_poll_s))
        self._spawn(self.run_loop(self._housekeeping, self.settings.housekeeping_every_s))
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
        """Handle one message; returns its outcome (see :meth:`process_batch`)."""
        return (await self.process_batch([Message(topic, partition, offset, key, raw)]))[0]

    async def process_batch(self, messages: Sequence[Message]) -> list[str]:
        """Handle messages in order; one outcome each: ``handled``, ``repeat`` (seen
        before), ``ignored`` (valid, of a type this service does not act on) or
        ``dead``. Retries while the database is away: nothing is acknowledged unhandled."""
        await self.ready.wait()
        now = self.clock.now()
        parsed = [self._parse(m, now) for m in messages]
        try:
            outcomes = await self._retrying(self._handle_batch, messages, parsed, False)
        except _Isolate:
            outcomes = [
                await self._handle_alone(m, p) for m, p in zip(messages, parsed, strict=True)
            ]
        counts = Counter(outcomes)
        for outcome, n in counts.items():
            metrics.CONSUMED.labels(self.spec.name, outcome).inc(n)
        log.info("handled", extra={"service": self.spec.name, **counts})
        self.wake_relay()
        return outcomes

    def _parse(self, message: Message, now: datetime) -> _Parsed | _Refused | None:
        """The checked event; None for a well-formed message of a type this service
        does not act on (its body is for the services that do to judge)."""
        try:
            envelope = parse_envelope(
                message.value, expected_topic=message.topic, key=message.key, require_key=True
            )
            if not self._acts_on(envelope.type):
                return None
            event = typed(envelope)
            check_recorded_times(event, now)
        except InvalidEvent as exc:
            return _Refused(exc.message, exc.field)
        except Exception as exc:  # a parser defect must not drop the message
            return _Refused(f"unreadable ({type(exc).__name__})", None)
        return _Parsed(event, inbox.digest(message.value))

    async def _handle_batch(
        self, messages: Sequence[Message], parsed: list[_Parsed | _Refused | None], alone: bool
    ) -> list[str]:
        assert self.pool is not None
        if all(p is None for p in parsed):
            return ["ignored"] * len(parsed)  # nothing to record: no transaction
        events = [p for p in parsed if isinstance(p, _Parsed)]
        outcomes, todo, letters = [], [], []
        async with self.pool.acquire() as conn, conn.transaction():
            patients = sorted({p.event.patient_id for p in events})
            await locks.lock_patients(conn, self.schema, patients)
            await self._fire_overdue(conn, patients)
            claims = await inbox.claim_many(
                conn, [(p.event.envelope.source, p.event.envelope.id, p.digest) for p in events]
            )
            claimed = iter(claims)  # one claim per parsed event, in order
            for message, p in zip(messages, parsed, strict=True):
                claim = next(claimed) if isinstance(p, _Parsed) else None
                if isinstance(p, _Refused) or claim is inbox.Seen.CONFLICT:
                    letters.append((message, p if isinstance(p, _Refused) else _ID_REUSED))
                    outcomes.append("dead")
                elif claim is None:
                    outcomes.append("ignored")
                elif claim is inbox.Seen.REPEAT:
                    outcomes.append("repeat")
                else:
                    assert isinstance(p, _Parsed)
                    todo.append(p.event)
                    outcomes.append("handled")
            ctx = self.context(conn, self.clock.now())
            if todo:
                await self._run_handler(ctx, todo, alone)
            await ctx.flush()
            for message, refusal in letters:
                await self._write_letter(conn, message, refusal)
        return outcomes

    def _acts_on(self, type_: str) -> bool:
        """Whether the service acts on this type. Others are ignored: with no effect
        to repeat they need no inbox entry."""
        return self.spec.handles is None or type_ in self.spec.handles

    async def _run_handler(self, ctx: Context, events: list[Event], alone: bool) -> None:
        try:
            await self.spec.handle(ctx, events)
        except db.TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            if alone:
                raise
            raise _Isolate() from exc

    async def _handle_alone(self, message: Message, parsed: _Parsed | _Refused | None) -> str:
        """The per-message path after a batch failed: a refusal or a defect rolls back
        this message's effects (inbox claim included) and dead-letters it."""
        try:
            return (await self._retrying(self._handle_batch, [message], [parsed], True))[0]
        except InvalidEvent as exc:  # refused by the service's rules
            refusal = _Refused(exc.message, exc.field)
        except Exception as exc:  # a defect, not bad input: keep the message for operators
            # The type only at error level: exception messages may quote input values.
            log.error("handler failed", extra={"topic": message.topic, "error": type(exc).__name__})
            log.debug("handler failure detail", exc_info=True)
            refusal = _Refused(f"internal error {type(exc).__name__}; replay once fixed", None)
        await self._retrying(self._dead_letter_alone, message, refusal)
        return "dead"

    async def _dead_letter_alone(self, message: Message, refusal: _Refused) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await self._write_letter(conn, message, refusal)

    async def _write_letter(
        self, conn: asyncpg.Connection, message: Message, refusal: _Refused
    ) -> None:
        letter = dead_letter(
            self.spec.name,
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            refusal.reason,
            refusal.field,
            self.clock.now(),
        )
        fresh = await conn.fetchval(
            'INSERT INTO dead_letters (id, topic, partition, "offset", key, reason, field, original, received_at)'
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING true",
            uuid.UUID(letter.id),
            message.topic,
            message.partition,
            message.offset,
            letter.key,
            refusal.reason,
            refusal.field,
            message.value,
            letter.received_at,
        )
        if fresh:
            await outbox.enqueue(
                conn, DLQ.name, letter.key, outbox.encode(letter.model_dump(mode="json"))
            )
        log.warning(
            "dead letter",
            extra={
                "service": self.spec.name,
                "topic": message.topic,
                "field": refusal.field,
                "reason": refusal.reason,
            },
        )

    async def _retrying(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        # Even while stopping: an unhandled message must not be acknowledged.
        return await retry(func, *args, errors=db.TRANSIENT_DB_ERRORS, what="database unavailable")

    # --- timers --------------------------------------------------------------------

    async def fire_due_timers(self) -> int:
        """Fire every timer due now, a batch of patients per transaction; returns how
        many fired. Each patient's lock is taken before its timers are claimed, as a
        message batch does, so a deadline and an input for one patient never interleave;
        a patient busy in another transaction waits for the next round."""
        assert self.pool is not None and self.spec.on_timers is not None
        fired, batch = 0, self.settings.timer_batch
        while True:
            async with self.pool.acquire() as conn:  # a cheap look, outside a transaction
                waiting, more = await timers.due_patients(conn, self.clock.now(), batch)
            if not waiting:
                return fired
            async with self.pool.acquire() as conn, conn.transaction():
                free = await locks.try_lock_patients(conn, self.schema, waiting)
                due = await self._fire(conn, sorted(free))
            fired += len(due)
            if due:
                self.wake_relay()
            if not more or not free:
                return fired

    async def _fire(self, conn: asyncpg.Connection, patients: list[str]) -> list[TimerRow]:
        """Fire the due timers of ``patients``, whose locks the caller holds."""
        now = self.clock.now()
        due = await timers.claim_due(conn, now, patients)
        if due:
            await self._run_timers(conn, now, due)
        return due

    async def _run_timers(
        self, conn: asyncpg.Connection, now: datetime, due: list[TimerRow]
    ) -> None:
        assert self.spec.on_timers is not None
        ctx = self.context(conn, now)
        for row in due:
            ctx.cancel_timer(row.patient_id, row.key)
        await self.spec.on_timers(ctx, due)
        await ctx.flush()

    async def _fire_overdue(self, conn: asyncpg.Connection, patients: list[str]) -> None:
        """Before a batch's input, the deadlines of its patients that are already due
        fire, as they would have on time: whether the timer loop got there first never
        changes the outcome. A failing timer (a defect) rolls back alone and is left to
        the timer loop; the input goes on."""
        if self.spec.on_timers is None or not patients:
            return
        now = self.clock.now()
        due = await timers.claim_due(conn, now, patients)
        if not due:
            return
        try:
            async with conn.transaction():  # a savepoint
                await self._run_timers(conn, now, due)
        except db.TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            log.warning("timers not fired before input", extra={"error": type(exc).__name__})
        else:
            self.wake_relay()

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

    async def _housekeeping(self) -> int:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            await housekeeping.prune(conn, self.settings)
        return 0

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


async def retry(
    func: Callable[..., Awaitable[Any]],
    *args: Any,
    errors: tuple[type[BaseException], ...],
    what: str,
    level: int = logging.WARNING,
) -> Any:
    """``func(*args)`` until it returns, waiting 0.2 s (doubling up to 5 s) after each
    of ``errors``, logged as ``what`` with the error's type only (messages may quote
    input values)."""
    delay = 0.2
    while True:
        try:
            return await func(*args)
        except errors as exc:
            log.log(level, f"{what}, retrying", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class _Isolate(Exception):
    """A handler refused or failed inside a batch: redo the batch message by message."""


_ID_REUSED = _Refused("id reused with a different body", "id")
