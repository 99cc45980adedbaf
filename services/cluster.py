"""A whole NTX deployment on one machine for demos, simulation, benchmarks and
end-to-end tests: the embedded broker and database, the three services as separate
processes, and one simulated clock they all read (``NTX_CLOCK_FILE``).

:meth:`Cluster.advance` moves the clock and waits until the system is quiet: every
consumer group has caught up, every outbox is empty, and no timer or due item at or
before "now" is left. Waiting for quiet, not sleeping, keeps runs deterministic.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.runner import SERVICES, ServiceProcesses, service_env
from services.tools import publish_raw
from services.worker import load_spec
from shared import db
from shared.clock import FileClock
from shared.infra import EmbeddedStack, create_topics
from shared.outbox import encode
from shared.topics import ALL_TOPICS, event_type

#: Settings for the service processes in simulated time: fast commits and polls.
SIM_ENV = {
    "NTX_BROKER_COMMIT_INTERVAL_S": "0.1",
    "NTX_TIMER_POLL_S": "0.02",
    "NTX_RELAY_POLL_S": "0.02",
    "NTX_LOG_LEVEL": "INFO",
}


class Cluster:
    def __init__(self, data_dir: Path, start: datetime, *, extra_env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.clock = FileClock(data_dir / "clock")
        self.start_at = start
        self.extra_env = extra_env or {}
        self.stack: EmbeddedStack | None = None
        self.procs: ServiceProcesses | None = None
        self._probe_loop: asyncio.AbstractEventLoop | None = None
        self._probe_consumers: dict[str, AIOKafkaConsumer] = {}

    # --- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.clock.set(self.start_at)
        self.stack = EmbeddedStack(self.data_dir).start()
        asyncio.run(self._prepare())
        env = {**SIM_ENV, "NTX_CLOCK_FILE": str(self.clock.path), **self.extra_env}
        self.procs = ServiceProcesses(
            service_env(self.bootstrap, self.database_url, env), self.data_dir
        )
        self.procs.start_all()
        if not self.procs.wait_healthy(timeout=120):
            self.__exit__(None, None, None)
            raise RuntimeError(f"services did not become healthy; see logs in {self.data_dir}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.procs is not None:
            self.procs.stop_all()
        if self.stack is not None:
            self.stack.stop()

    async def _prepare(self) -> None:
        await create_topics(self.bootstrap)
        for name in SERVICES:
            await db.migrate(
                self.database_url, name, load_spec(name).migrations, owner=db.service_role(name)
            )

    @property
    def bootstrap(self) -> str:
        assert self.stack is not None
        return self.stack.bootstrap

    @property
    def database_url(self) -> str:
        assert self.stack is not None
        return self.stack.database_url

    # --- driving -------------------------------------------------------------------

    async def send(self, envelopes: list[dict]) -> None:
        messages = [(event_type(e["type"]).topic.name, e["subject"], encode(e)) for e in envelopes]
        await publish_raw(messages, self.bootstrap)

    async def send_raw(self, messages: list[tuple[str, str | None, bytes]]) -> None:
        """Send bytes as they are (for hostile-input tests)."""
        await publish_raw(messages, self.bootstrap)

    async def close_probes(self) -> None:
        """Call at the end of each event loop that drove the cluster."""
        for probe in self._probe_consumers.values():
            await probe.stop()
        self._probe_loop, self._probe_consumers = None, {}

    async def advance(self, to: datetime, *, step: timedelta = timedelta(hours=1)) -> None:
        """Move the clock to ``to`` in steps, letting the system settle at each one."""
        now = self.clock.now()
        while now < to:
            now = min(now + step, to)
            self.clock.set(now)
            await self.settle()

    async def settle(self, timeout: float = 120.0) -> None:
        """Wait until two consecutive checks find nothing left to do."""
        deadline = asyncio.get_running_loop().time() + timeout
        quiet_in_a_row = 0
        while quiet_in_a_row < 2:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"not quiet after {timeout}s: {await self.pending()}")
            quiet_in_a_row = quiet_in_a_row + 1 if not await self.pending() else 0
            await asyncio.sleep(0.05)

    async def pending(self) -> dict[str, int]:
        """What is still in flight: consumer lag, unsent outbox rows, due work."""
        now = self.clock.now()
        found = {**await self._lag(), **await self._db_work(now)}
        return {k: v for k, v in found.items() if v}

    async def _db_work(self, now: datetime) -> dict[str, int]:
        conn = await db.connect(self.database_url, "public")
        try:
            out = {}
            for name in SERVICES:
                out[f"{name}.outbox"] = await conn.fetchval(
                    f"SELECT count(*) FROM {name}.outbox WHERE sent_at IS NULL"
                )
                out[f"{name}.timers"] = await conn.fetchval(
                    f"SELECT count(*) FROM {name}.timers WHERE due_at <= $1", now
                )
            out["scheduler.due"] = await conn.fetchval(
                "SELECT count(*) FROM scheduler.due_items WHERE emitted_at IS NULL AND due_at <= $1",
                now,
            )
            return out
        finally:
            await conn.close()

    async def _lag(self) -> dict[str, int]:
        """Messages each service's consumer group has not committed yet. (Tansu drops
        the admin client's OffsetFetch; a consumer that never subscribes can ask.)"""
        ends = await self._end_offsets()
        lag = {}
        for name, probe in (await self._probes()).items():
            topics = {t.name for t in load_spec(name).topics}
            behind = 0
            for tp, end in ends.items():
                if tp.topic in topics:
                    # faust can commit one past the end on Tansu (its gap tracking),
                    # so only a positive difference is work still to do
                    behind += max(0, end - ((await probe.committed(tp)) or 0))
            lag[f"{name}.lag"] = behind
        return lag

    async def _probes(self) -> dict[str, AIOKafkaConsumer]:
        loop = asyncio.get_running_loop()
        if self._probe_loop is not loop:
            self._probe_loop, self._probe_consumers = loop, {}
            for name in SERVICES:
                probe = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    group_id=f"ntx-{name}",
                    enable_auto_commit=False,
                )
                await probe.start()
                self._probe_consumers[name] = probe
        return self._probe_consumers

    async def _end_offsets(self) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            parts = [TopicPartition(t.name, p) for t in ALL_TOPICS for p in range(t.partitions)]
            return await consumer.end_offsets(parts)
        finally:
            await consumer.stop()

    async def dead_letters(self) -> dict[str, int]:
        conn = await db.connect(self.database_url, "public")
        try:
            return {
                n: await conn.fetchval(f"SELECT count(*) FROM {n}.dead_letters") for n in SERVICES
            }
        finally:
            await conn.close()

    async def read(self, topic: str) -> list[dict]:
        """Every message on ``topic`` so far, decoded."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            t = next(x for x in ALL_TOPICS if x.name == topic)
            parts = [TopicPartition(topic, p) for p in range(t.partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            out: list[dict] = []
            while [p for p in parts if await consumer.position(p) < ends[p]]:
                for msgs in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(json.loads(m.value) for m in msgs)
            return sorted(out, key=lambda e: e.get("time", ""))
        finally:
            await consumer.stop()
