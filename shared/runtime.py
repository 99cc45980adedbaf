"""A service's reliable core, independent of faust: admit each inbound message at the
door (:mod:`shared.ingress`; bad ones become dead letters), run its handler in one
transaction with the inbox claim and the outbox rows it causes, fire durable timers,
and relay the outbox.

Messages come in batches (one transaction per batch, a few statements per batch
rather than per message). A handler that refuses or fails on one message rolls the
batch back; the batch is then handled message by message, so only that message is
dead-lettered. Only transient errors (the database away) are retried for ever; a
batch that fails otherwise :attr:`Settings.poison_attempts` times is handled message
by message too, and a message that still fails is dead-lettered with the reason: one
message never stops a partition. The faust app (:mod:`shared.app`) feeds
:meth:`Runtime.process_batch`; tests and tools can call it, or :meth:`Runtime.process`
for one message, directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import db, deadletter, housekeeping, inbox, locks, metrics, outbox, timers
from shared.clock import Clock
from shared.context import Context
from shared.envelope import Envelope, Event, InvalidEvent
from shared.ingress import Admitted, Message, Refused, admit
from shared.progress import Progress
from shared.retrying import Poisoned, attempt, retry
from shared.settings import Settings
from shared.timers import TimerRow
from shared.topics import Topic

log = logging.getLogger("ntx.runtime")

__all__ = ["Context", "Message", "Runtime", "ServiceSpec", "each", "each_timer", "retry"]

Checked = Admitted | Refused | None

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
        #: Set when the process is told to stop (SIGTERM): a batch being retried is
        #: abandoned, unacknowledged, rather than holding the shutdown for ever.
        self.shutdown_requested = asyncio.Event()
        self.progress = Progress(settings.stall_after_s)
        self._tasks: list[asyncio.Task[None]] = []
        self._loops = 0

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        url = self.settings.database_url_for(self.spec.name)
        await db.wait_for_database(url)
        await db.migrate(url, self.schema, self.spec.migrations)
        self.pool = await db.create_pool(
            url,
            self.schema,
            min_size=self.settings.db_pool_min,
            max_size=self.settings.db_pool_max,
            application=f"ntx-{self.spec.name}",
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            linger_ms=2,
            **self.settings.producer_options(),  # acks=all, idempotent
        )
        await self.producer.start()
        self.relay = outbox.Relay(
            self.pool,
            self._send_rows,
            schema=self.schema,
            on_unpublishable=self._unpublishable,
            batch=self.settings.relay_batch,
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

    async def _send_rows(self, rows: list[outbox.Row]) -> list[BaseException | None]:
        assert self.producer is not None
        results = await outbox.send_each(self.producer, rows)
        metrics.PUBLISHED.labels(self.spec.name).inc(sum(r is None for r in results))
        return results

    async def _unpublishable(
        self,
        conn: asyncpg.Connection,
        topic: str,
        key: str | None,
        value: bytes,
        error: BaseException,
    ) -> None:
        await deadletter.unpublishable(
            conn, self.spec.name, self.schema, topic, key, value, error, self.clock.now()
        )

    def context(
        self, conn: asyncpg.Connection, now: datetime, cause: Envelope | None = None
    ) -> Context:
        return Context(conn, now, self.spec.source, cause=cause, settings=self.settings)

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wakeup.set()

    # --- inbound messages --------------------------------------------------------

    async def process(
        self,
        topic: str,
        partition: int | None,
        offset: int | None,
        key: bytes | None,
        raw: bytes | None,
    ) -> str:
        """Handle one message; returns its outcome (see :meth:`process_batch`)."""
        return (await self.process_batch([Message(topic, partition, offset, key, raw)]))[0]

    async def process_batch(self, messages: Sequence[Message]) -> list[str]:
        """Handle messages in order; one outcome each: ``handled``, ``repeat`` (seen
        before), ``ignored`` (valid, of a type this service does not act on) or
        ``dead``. Retries while the database is away: nothing is acknowledged unhandled."""
        await self.ready.wait()
        self.progress.batch_started()
        now = self.clock.now()
        checked = [admit(m, now, self._acts_on) for m in messages]
        try:
            outcomes = await self._attempt(self._handle_batch, messages, checked, False)
        except (_Isolate, Poisoned) as exc:
            if isinstance(exc, Poisoned):
                log.error("batch given up", extra={"error": type(exc.last).__name__})
            outcomes = [
                await self._handle_alone(m, c) for m, c in zip(messages, checked, strict=True)
            ]
        self.progress.batch_done(messages)
        counts = Counter(outcomes)
        for outcome, n in counts.items():
            metrics.CONSUMED.labels(self.spec.name, outcome).inc(n)
        log.info("handled", extra={"service": self.spec.name, **counts})
        self.wake_relay()
        return outcomes

    async def _handle_batch(
        self, messages: Sequence[Message], checked: list[Checked], alone: bool
    ) -> list[str]:
        assert self.pool is not None
        if all(c is None for c in checked):
            return ["ignored"] * len(checked)  # nothing to record: no transaction
        events = [c for c in checked if isinstance(c, Admitted)]
        outcomes, todo, letters = [], [], []
        async with self.pool.acquire() as conn, conn.transaction():
            patients = sorted({c.event.patient_id for c in events})
            await locks.lock_patients(conn, self.schema, patients)
            await self._fire_overdue(conn, patients)
            claims = await inbox.claim_many(
                conn, [(c.event.envelope.source, c.event.envelope.id, c.digest) for c in events]
            )
            claimed = iter(claims)  # one claim per admitted event, in order
            for message, c in zip(messages, checked, strict=True):
                claim = next(claimed) if isinstance(c, Admitted) else None
                if isinstance(c, Refused) or claim is inbox.Seen.CONFLICT:
                    letters.append((message, c if isinstance(c, Refused) else _ID_REUSED))
                    outcomes.append("dead")
                elif claim is None:
                    outcomes.append("ignored")
                elif claim is inbox.Seen.REPEAT:
                    outcomes.append("repeat")
                else:
                    assert isinstance(c, Admitted)
                    todo.append(c.event)
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
        except InvalidEvent:
            if alone:
                raise
            raise _Isolate() from None
        except Exception as exc:
            if alone:
                raise _HandlerFailed(exc) from exc
            raise _Isolate() from exc

    async def _handle_alone(self, message: Message, checked: Checked) -> str:
        """The per-message path after a batch failed: a refusal or a defect rolls back
        this message's effects (inbox claim included) and dead-letters it."""
        try:
            return (await self._attempt(self._handle_batch, [message], [checked], True))[0]
        except InvalidEvent as exc:  # refused by the service's rules
            refusal = Refused(exc.message, exc.field)
        except (_HandlerFailed, Poisoned) as exc:  # a defect, not bad input: keep it
            cause = exc.cause if isinstance(exc, _HandlerFailed) else exc.last
            # The type only at error level: exception messages may quote input values.
            log.error(
                "handler failed", extra={"topic": message.topic, "error": type(cause).__name__}
            )
            log.debug("handler failure detail", exc_info=cause)
            tries = f" after {exc.attempts} attempts" if isinstance(exc, Poisoned) else ""
            refusal = Refused(
                f"internal error {type(cause).__name__}{tries}; replay once fixed", None
            )
        await self._attempt(self._dead_letter_alone, message, refusal)
        return "dead"

    async def _dead_letter_alone(self, message: Message, refusal: Refused) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await self._write_letter(conn, message, refusal)

    async def _write_letter(
        self, conn: asyncpg.Connection, message: Message, refusal: Refused
    ) -> None:
        letter = deadletter.dead_letter(
            self.spec.name,
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            refusal.reason,
            refusal.field,
            self.clock.now(),
            schema=self.schema,
        )
        await deadletter.store(conn, letter, message.key, message.value)
        log.warning(
            "dead letter",
            extra={
                "service": self.spec.name,
                "topic": message.topic,
                "field": letter.field,
                "reason": letter.reason,
            },
        )

    async def _attempt(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Retry while the database is away, even while stopping (an unhandled message
        must not be acknowledged) unless a shutdown is requested; give up a call that
        fails otherwise ``poison_attempts`` times."""
        return await attempt(
            func,
            *args,
            transient=db.TRANSIENT_DB_ERRORS,
            attempts=self.settings.poison_attempts,
            fatal=(_Isolate, _HandlerFailed, InvalidEvent),
            what="database unavailable",
            abandon_on=self.shutdown_requested,
            outage=self._database_away,
        )

    async def _database_away(self) -> bool:
        """Whether the database fails a trivial query now: then the failures that
        made a call look poisoned were the outage's, and it is retried on."""
        assert self.pool is not None
        try:
            async with self.pool.acquire(timeout=5) as conn:
                await conn.fetchval("SELECT 1", timeout=5)
        except Exception:
            return True
        return False

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
        changes the outcome. A deadline at exactly this instant waits: the input is on
        time (:func:`shared.timers.fires_before_input`). A failing timer (a defect)
        rolls back alone and is left to the timer loop; the input goes on."""
        if self.spec.on_timers is None or not patients:
            return
        now = self.clock.now()
        due = await timers.claim_due(conn, now, patients, before_input=True)
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
        backoff, name = poll_s, getattr(step, "__name__", "<lambda>").strip("_")
        if name == "<lambda>":  # the scheduler's loops: named by their order
            self._loops += 1
            name = f"loop{self._loops}"
        while not self.stopping.is_set():
            try:
                busy = await step()
                backoff = poll_s
                self.progress.loop_ok(name)
            except Exception as exc:
                # The type only: messages of validation errors may quote input values.
                log.warning(
                    "loop retry",
                    extra={"service": self.spec.name, "loop": name, "error": type(exc).__name__},
                )
                log.debug("loop failure detail", exc_info=True)
                self.progress.loop_failed(name)
                busy, backoff = 0, min(max(backoff * 2, 0.2), 5.0)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=backoff)

    async def _housekeeping(self) -> int:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            await housekeeping.prune(conn, self.settings)
        return 0

    async def health(self, waiting: int = 0) -> dict[str, Any]:
        """Started, the database answers, and work is getting done: no batch held
        past ``stall_after_s``, no loop failing that long, and no input (``waiting``
        messages, as the consumer sees them) left untouched that long."""
        status: dict[str, Any] = {
            "service": self.spec.name,
            "ready": self.ready.is_set(),
            "database": False,
        }
        if self.pool is not None:
            try:
                async with self.pool.acquire(timeout=2) as conn:
                    status["database"] = await conn.fetchval("SELECT true")
                    status["outbox_pending"] = await conn.fetchval(
                        "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
                    )
            except Exception:
                status["database"] = False
        if self.relay is not None and self.relay.failing_since is not None:
            self.progress.failing["relay"] = self.relay.failing_since
        else:
            self.progress.loop_ok("relay")
        status["stalled"] = self.progress.stalled(waiting)
        status["ok"] = bool(status["ready"] and status["database"] and not status["stalled"])
        return status


class _Isolate(Exception):
    """A handler refused or failed inside a batch: redo the batch message by message."""


class _HandlerFailed(Exception):
    """A handler failed on one message for a reason other than its input: a defect."""

    def __init__(self, cause: BaseException):
        super().__init__(type(cause).__name__)
        self.cause = cause


_ID_REUSED = Refused("id reused with a different body", "id")
