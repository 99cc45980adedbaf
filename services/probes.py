"""The cluster driver's probes: whether a deployment is quiet (every consumer group
caught up, and no work left in any service's tables, as each service's spec defines
it) and when more work falls due."""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.bootstrap import load_spec
from services.topic_reading import PROBE_FETCH_WAIT_MS, partitions, true_end_offsets
from shared import db
from shared.settings import Settings


class Probes:
    """Persistent connections for :meth:`Cluster.pending`: one consumer for end offsets,
    one per consumer group for its committed offsets (a consumer that never subscribes
    asks its group's coordinator; it works on Apache Kafka and on the Tansu fallback,
    which drops the admin client's OffsetFetch, in one request per group either way),
    one database connection."""

    def __init__(
        self,
        ends: AIOKafkaConsumer,
        groups: dict[str, AIOKafkaConsumer],
        conn: asyncpg.Connection,
        services: tuple[str, ...],
        producer: AIOKafkaProducer,
        database_url: str,
    ):
        self.ends, self.groups, self.conn, self.services = ends, groups, conn, services
        self.producer = producer
        self.database_url = database_url
        # what each service's spec says is work left, and when more falls due
        settings, work = Settings(), [(n, w) for n in services for w in load_spec(n).all_work]
        self.work_sql = " UNION ALL ".join(
            f"SELECT '{name}.{w.name}', ({w.sql(w.count, name, settings)})" for name, w in work
        )
        self.next_due_sql = " UNION ALL ".join(
            f"({w.sql(w.next_due, name, settings)})" for name, w in work if w.next_due
        )

    @classmethod
    async def open(
        cls, bootstrap: str, database_url: str, services: tuple[str, ...], *, tansu: bool
    ) -> Probes:
        ends = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=PROBE_FETCH_WAIT_MS,
        )
        await ends.start()
        groups = {}
        for name in services:
            groups[name] = AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=load_spec(name).group,
                enable_auto_commit=False,
            )
            await groups[name].start()
        conn = await db.connect(database_url, "public")
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=not tansu, linger_ms=2
        )
        await producer.start()
        return cls(ends, groups, conn, services, producer, database_url)

    async def close(self) -> None:
        await self.producer.stop()
        for consumer in (self.ends, *self.groups.values()):
            await consumer.stop()
        if not self.conn.is_closed():
            await self.conn.close()

    async def lag(self) -> dict[str, int]:
        """Messages each service's consumer group has not committed yet."""
        inputs = {name: [t.name for t in load_spec(name).topics] for name in self.services}
        parts = partitions(sorted({t for names in inputs.values() for t in names}))
        ends = await true_end_offsets(self.ends, parts)
        lag = {}
        for name, probe in self.groups.items():
            mine = [tp for tp in parts if tp.topic in inputs[name]]
            if not mine:  # a service that reads no topic (the gateway) has none to lag
                lag[f"{name}.lag"] = 0
                continue
            # Find the group's coordinator anew each time: one that moved (its broker
            # died and came back) answers NOT_COORDINATOR as a group-level error, which
            # aiokafka 0.14 reads as "no commits" and never looks further. A missing
            # commit only ever counts as work left, never as quiet.
            _forget_coordinator(probe)
            # one OffsetFetch for all the group's partitions (consumer.committed asks
            # one partition per request; aiokafka is pinned)
            committed = await probe._coordinator.fetch_committed_offsets(mine)
            # On Apache Kafka a committed offset never passes the end (0 of 2,687
            # checks); on the Tansu fallback faust commits one past it (1,151 of 1,548,
            # its gap tracking), and the broker's own end figure can lag (see
            # true_end_offsets): only a positive difference is work still to do.
            lag[f"{name}.lag"] = sum(
                max(0, ends[tp] - max(committed[tp].offset, 0) if tp in committed else ends[tp])
                for tp in mine
            )
        return lag

    async def next_due(self, after: datetime) -> datetime | None:
        """The next moment after ``after`` at which a timer or a due item falls due."""
        return await self.conn.fetchval(f"SELECT min(m) FROM ({self.next_due_sql}) AS t(m)", after)

    async def db_work(self, now: datetime) -> dict[str, int]:
        try:
            if self.conn.is_closed():  # PostgreSQL restarted (fault runs): connect again
                self.conn = await db.connect(self.database_url, "public")
            return {r[0]: r[1] for r in await self.conn.fetch(self.work_sql, now)}
        except db.TRANSIENT_DB_ERRORS as exc:
            if not self.conn.is_closed():
                self.conn.terminate()
            # not known to be quiet; the error's type says why when a run never settles
            return {f"database ({type(exc).__name__})": 1}


_COORDINATOR_LOG = logging.getLogger("aiokafka.consumer.group_coordinator")


def _forget_coordinator(probe: AIOKafkaConsumer) -> None:
    """Make the probe look its group's coordinator up again, without aiokafka's
    warning: that warning reports a coordinator found dead, and this one is only
    forgotten on purpose, once per probe (a demo would print it some 2,000 times)."""
    level = _COORDINATOR_LOG.level
    _COORDINATOR_LOG.setLevel(logging.ERROR)  # a plain call: nothing else runs meanwhile
    try:
        probe._coordinator.coordinator_dead()
    finally:
        _COORDINATOR_LOG.setLevel(level)
