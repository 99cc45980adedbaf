"""A service's reliable core, independent of faust: it owns the service's lifecycle
(the database pool, the producer, the background loops) and wires the parts that
each own one thing:

* :mod:`shared.ingress`: a message becomes an event, or a refusal naming the field,
  before any transaction;
* :mod:`shared.batches`: a batch of messages in one unit of work
  (:mod:`shared.unit_of_work`), with dead letters (:mod:`shared.deadletter`) for
  what is refused;
* :mod:`shared.deadlines`: durable timers fired in rounds and before input;
* :mod:`shared.outbox`: the relay publishing what the units wrote;
* :mod:`shared.supervised`: the one loop (backoff, jitter) the relay, the timers,
  housekeeping and the service's own loops run in.

The faust app (:mod:`shared.app`) feeds :meth:`Runtime.process_batch`; tests and
tools can call it, or :meth:`Runtime.process` for one message, directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import db, deadletter, housekeeping, metrics, outbox, records, tracing
from shared.batches import Batches
from shared.clock import Clock
from shared.deadlines import Deadlines
from shared.ingress import Message
from shared.progress import Progress
from shared.settings import Settings
from shared.spec import LoopSpec, ServiceSpec, each, each_timer
from shared.supervised import Loop
from shared.unit_of_work import Context, UnitOfWork, Units

log = logging.getLogger("ntx.runtime")

__all__ = [
    "Context",
    "LoopSpec",
    "Message",
    "Runtime",
    "ServiceSpec",
    "UnitOfWork",
    "each",
    "each_timer",
]


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
        self.units: Units | None = None
        self.deadlines: Deadlines | None = None
        self.batches: Batches | None = None
        self.loops: dict[str, Loop] = {}
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        #: Set when the process is told to stop (SIGTERM): a batch being retried is
        #: abandoned, unacknowledged, rather than holding the shutdown for ever.
        self.shutdown_requested = asyncio.Event()
        self.progress = Progress(settings.stall_after_s)
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        tracing.configure(self.spec.name)
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
        self._wire(self.pool)
        self.ready.set()
        log.info("service started", extra={"service": self.spec.name, "schema": self.schema})

    def _wire(self, pool: asyncpg.Pool) -> None:
        """The parts, and the loops they run in."""
        settings = self.settings
        self.relay = outbox.Relay(
            pool,
            self._send_rows,
            schema=self.schema,
            on_unpublishable=self._unpublishable,
            batch=settings.relay_batch,
            on_published=self._observe_outbox_ages,
        )
        self.units = Units(pool, self.spec.source, self.schema, settings, self.spec.repositories)
        self.deadlines = Deadlines(self.units, self.spec.on_timers, self.clock, self.wake_relay)
        self.batches = Batches(self.units, self.spec, self.deadlines, self.shutdown_requested)
        self._run(Loop("relay", self.relay.run_once, settings.relay_poll_s))
        if self.spec.on_timers is not None:
            self._run(Loop("timers", self.fire_due_timers, settings.timer_poll_s))
        self._run(Loop("housekeeping", self._housekeeping, settings.housekeeping_every_s))
        for own in self.spec.loops:
            self._run(Loop(own.name, _bound(own, self), own.poll_s(settings)))

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

    def _run(self, loop: Loop) -> None:
        self.loops[loop.name] = loop
        self._tasks.append(
            asyncio.ensure_future(loop.run(self.stopping, self.progress, self.spec.name))
        )

    async def _send_rows(self, rows: list[outbox.Row]) -> list[BaseException | None]:
        assert self.producer is not None
        results = await records.send_each(self.producer, rows)
        metrics.PUBLISHED.labels(self.spec.name).inc(sum(r is None for r in results))
        return results

    def _observe_outbox_ages(self, ages: list[float]) -> None:
        histogram = metrics.OUTBOX_AGE.labels(self.spec.name)
        for age in ages:
            histogram.observe(age)

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

    def unit_of_work(self, now: datetime) -> AbstractAsyncContextManager[UnitOfWork]:
        """One transaction seeing ``now`` (:meth:`shared.unit_of_work.Units.begin`)."""
        assert self.units is not None
        return self.units.begin(now)

    def wake_relay(self) -> None:
        if "relay" in self.loops:
            self.loops["relay"].wake()

    # --- work --------------------------------------------------------------------

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
        """Handle messages in order; one outcome each (:meth:`Batches.handle`)."""
        await self.ready.wait()
        assert self.batches is not None
        self.progress.batch_started()
        began = time.monotonic()
        outcomes = await self.batches.handle(messages, self.clock.now())
        metrics.HANDLING.labels(self.spec.name).observe(time.monotonic() - began)
        self.progress.batch_done(messages)
        for outcome, n in Counter(outcomes).items():
            metrics.CONSUMED.labels(self.spec.name, outcome).inc(n)
        self.wake_relay()
        return outcomes

    async def fire_due_timers(self) -> int:
        """One round of the timers due now; returns how many fired."""
        assert self.deadlines is not None
        return await self.deadlines.fire_due()

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
        status["stalled"] = self.progress.stalled(waiting)
        status["ok"] = bool(status["ready"] and status["database"] and not status["stalled"])
        return status


def _bound(own: LoopSpec, runtime: Runtime):  # type: ignore[no-untyped-def]
    """The service's own loop step, given the runtime it runs in."""

    def step() -> Awaitable[int]:
        return own.step(runtime)

    return step
