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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.errors import KafkaError

from services.bootstrap import SERVICES, load_spec
from services.probes import Probes
from services.runner import ServiceProcesses, role_env, service_env
from services.topic_reading import commit_ends, partitions, read_all, true_end_offsets
from shared import db
from shared.clock import FileClock
from shared.infra import EmbeddedBroker, EmbeddedStack, create_topics
from shared.records import Record, record, send_all

#: Settings for the service processes in simulated time: fast commits and polls.
SIM_ENV = {
    "NTX_BROKER_COMMIT_INTERVAL_S": "0.1",
    "NTX_TIMER_POLL_S": "0.02",
    "NTX_RELAY_POLL_S": "0.02",
    "NTX_LOG_LEVEL": "INFO",
}


class Cluster:
    """``start`` is the simulated moment the clock begins at; ``start=None`` runs the
    services on the wall clock. ``services`` picks which of the three to run."""

    def __init__(
        self,
        data_dir: Path,
        start: datetime | None,
        *,
        extra_env: dict[str, str] | None = None,
        services: tuple[str, ...] = SERVICES,
        brokers: int = 1,
    ):
        self.data_dir = data_dir
        self.clock = FileClock(data_dir / "clock")
        self.start_at = start
        self.extra_env = extra_env or {}
        self.services = services
        self.brokers = brokers
        self.stack: EmbeddedStack | None = None
        self.procs: ServiceProcesses | None = None
        self._probe_loop: asyncio.AbstractEventLoop | None = None
        self._probes: Probes | None = None

    # --- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(SIM_ENV)
        if self.start_at is not None:
            self.clock.set(self.start_at)
            env["NTX_CLOCK_FILE"] = str(self.clock.path)
        self.stack = EmbeddedStack(self.data_dir, brokers=self.brokers).start()
        env.update(self.stack.settings_env())
        asyncio.run(self._prepare())
        roles = role_env(self.database_url)  # as under ntx run: each its own role
        self.procs = ServiceProcesses(
            service_env(self.bootstrap, self.database_url, {**roles, **env, **self.extra_env}),
            self.data_dir,
        )
        for name in self.services:
            self.procs.start(name)
        if not self.procs.wait_healthy(timeout=120, assigned=True):
            self.__exit__(None, None, None)
            raise RuntimeError(f"services did not become healthy; see logs in {self.data_dir}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.procs is not None:
            self.procs.stop_all()
        if self.stack is not None:
            self.stack.stop()

    async def _prepare(self) -> None:
        assert self.stack is not None
        await create_topics(self.bootstrap, **self.stack.topic_options())
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
        await self.send_raw(wire(envelopes))

    async def send_raw(self, messages: list[Record]) -> None:
        """Send bytes as they are (acks=all, in order per partition)."""
        await send_all((await self._get_probes()).producer, messages)

    async def close_probes(self) -> None:
        """Call at the end of each event loop that drove the cluster."""
        if self._probes is not None:
            await self._probes.close()
        self._probe_loop, self._probes = None, None

    async def advance(
        self, to: datetime, *, step: timedelta = timedelta(hours=1), exact: bool = False
    ) -> None:
        """Move the clock to ``to`` in steps, letting the system settle at each one.
        With ``exact``, also stop at each moment a timer or due item falls due, so
        everything happens at its own time (a readable timeline; more steps)."""
        now = self.clock.now()
        while now < to:
            upcoming = await (await self._get_probes()).next_due(now) if exact else None
            now = min(now + step, to, *([upcoming] if upcoming else []))
            self.clock.set(now)
            await self.settle()

    async def start_service(self, name: str, *, from_end: bool = False) -> None:
        """Start one more service while the others run. ``from_end``: its consumer
        group begins at the topics' current ends, as for a service deployed after
        their history (or their retention) passed: it never sees what came before."""
        assert self.procs is not None
        if from_end:
            spec = load_spec(name)
            await commit_ends(self.bootstrap, spec.group, [t.name for t in spec.topics])
        await self.close_probes()
        self.services = (*self.services, name)
        self.procs.start(name)
        if not await asyncio.to_thread(self.procs.wait_healthy, 120, assigned=True):
            raise RuntimeError(f"{name} did not become healthy; see logs in {self.data_dir}")

    async def adopted(self) -> int:
        """Patients the alerts service took under treatment without seeing a plan."""
        conn = await db.connect(self.database_url, "public")
        try:
            return await conn.fetchval(
                "SELECT count(*) FROM alerts.patient_state WHERE (state->>'adopted')::bool"
            )
        finally:
            await conn.close()

    async def settle(self, timeout: float = 120.0) -> None:
        """Wait until two consecutive checks find nothing left to do."""
        deadline = asyncio.get_running_loop().time() + timeout
        quiet_in_a_row = 0
        while quiet_in_a_row < 2:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"not quiet after {timeout}s: {await self.pending()}")
            quiet_in_a_row = quiet_in_a_row + 1 if not await self.pending() else 0
            await asyncio.sleep(0.02)

    async def pending(self) -> dict[str, int]:
        """What is still in flight: consumer lag, unsent outbox rows, due work."""
        probes = await self._get_probes()
        found = {k: v for k, v in (await probes.db_work(self.now())).items() if v}
        if not found:  # the cheap look first; the brokers' offsets only when it is quiet
            try:
                found = {k: v for k, v in (await probes.lag()).items() if v}
            except KafkaError:  # a broker died and its partitions are moving: not quiet
                found = {"broker": 1}
        return found

    def now(self) -> datetime:
        return self.clock.now() if self.start_at is not None else datetime.now(UTC)

    async def _get_probes(self) -> Probes:
        loop = asyncio.get_running_loop()
        if self._probe_loop is not loop or self._probes is None:
            self._probe_loop = loop
            assert self.stack is not None
            tansu = isinstance(self.stack.broker, EmbeddedBroker)
            self._probes = await Probes.open(
                self.bootstrap, self.database_url, self.services, tansu=tansu
            )
        return self._probes

    async def end_offsets(self, topics: list[str]) -> dict[str, int]:
        """Messages on each topic so far (the sum over its partitions)."""
        probes = await self._get_probes()
        ends = await true_end_offsets(probes.ends, partitions(topics))
        return {t: sum(n for tp, n in ends.items() if tp.topic == t) for t in topics}

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
        out = [json.loads(r.value) for r in await read_all(self.bootstrap, [topic])]
        return sorted(out, key=lambda e: e.get("time", ""))


def wire(envelopes: list[dict]) -> list[Record]:
    """``(topic, key, value)`` of CloudEvents, as the health system would send them."""
    return [record(e) for e in envelopes]
