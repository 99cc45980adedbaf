"""Pipeline throughput: the ``ntx simulate`` cohort through the three service processes
on one simulated clock, a day per step, and the raw broker reference measured on the
same broker afterwards with the same number and size of messages.

``events_per_s`` counts what the services published (decisions, plans, due events,
alerts, notifications, dead letters) over the wall time of the drive loop, which
includes waiting at each simulated day until every service has caught up."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.cluster import Cluster, wire
from services.simulate import FIRST_DAY, START, ZONE, Patient, check, cohort, day_events
from services.topic_reading import read_all
from shared import db
from shared.infra import EmbeddedBroker, TopicOptions, create_topics
from shared.localtime import to_utc
from shared.records import send_all
from shared.topics import ALERTS, DLQ, INTAKE_DECISIONS, NOTIFICATIONS, SCHEDULE

SEED = 2026
OUTPUTS = [t.name for t in (INTAKE_DECISIONS, SCHEDULE, ALERTS, NOTIFICATIONS, DLQ)]
RAW_TOPIC = "ntx.bench.raw"
#: The reference is the median of this many runs (it varies by a third run to run).
RAW_RUNS = 3


@dataclass(frozen=True)
class PipelineResult:
    events: int
    seconds: float
    mean_bytes: int
    truth: str
    postgres_version: str
    raw_events_per_s: float
    broker: str

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def measure(data_dir: Path, patients_n: int, days: int, *, with_raw: bool) -> PipelineResult:
    patients = cohort(patients_n, days, SEED)
    with Cluster(data_dir, _local(FIRST_DAY, 5, 0)) as cluster:
        seconds = asyncio.run(_drive(cluster, patients, days))
        records = asyncio.run(read_all(cluster.bootstrap, OUTPUTS))
        version = asyncio.run(_postgres_version(cluster.database_url))
        assert cluster.stack is not None
        broker = cluster.stack.broker.name if cluster.stack.broker else "external broker"
        kafka = not isinstance(cluster.stack.broker, EmbeddedBroker)  # Tansu: no idempotence
        count = len(records)
        mean = round(sum(len(r.value) for r in records) / max(count, 1))
        raw = 0.0
        if with_raw:
            assert cluster.procs is not None
            cluster.procs.stop_all()  # the reference gets the machine to itself
            raw = statistics.median(
                asyncio.run(
                    raw_rate(
                        cluster.bootstrap,
                        count,
                        mean,
                        patients_n,
                        run,
                        idempotent=kafka,
                        replication=cluster.stack.topic_options(),
                    )
                )
                for run in range(RAW_RUNS)
            )
    alerts = [json.loads(r.value) for r in records if r.topic == ALERTS.name]
    found = check(patients, alerts, days)
    truth = f"{len(found['missed'])} missed, {len(found['spurious'])} spurious"
    return PipelineResult(count, seconds, mean, truth, version, raw, broker)


def _local(day: int, hour: int, minute: int) -> datetime:
    return to_utc(datetime.combine(START + timedelta(days=day), clock_time(hour, minute)), ZONE)


async def _drive(cluster: Cluster, patients: list[Patient], days: int) -> float:
    """One clock step per simulated day: to 09:20 local, where the day's doses are due
    and the health system sends what the patients did; then wait until quiet."""
    days_run = range(FIRST_DAY, days)  # the cohort's first patients enrol the day before
    script = [wire([e for p in patients for e in day_events(p, n, days)]) for n in days_run]
    began = time.perf_counter()  # the load is made beforehand: the clock measures the system
    for n, messages in zip(days_run, script, strict=True):
        cluster.clock.set(_local(n, 9, 20))
        await cluster.send_raw(messages)
        await cluster.settle(timeout=600)
    cluster.clock.set(_local(days, 0, 0))
    await cluster.settle(timeout=600)
    elapsed = time.perf_counter() - began
    await cluster.close_probes()
    return elapsed


async def _postgres_version(url: str) -> str:
    conn = await db.connect(url, "public")
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def raw_rate(
    bootstrap: str,
    count: int,
    size: int,
    keys: int,
    run: int = 0,
    *,
    idempotent: bool = True,
    replication: TopicOptions | None = None,
) -> float:
    """aiokafka alone: ``count`` messages of ``size`` bytes produced (acks=all, idempotent
    as the services' relays produce) and
    consumed through the broker; messages per second from first send to last read."""
    topic = f"{RAW_TOPIC}.{run}"
    await create_topics(bootstrap, [topic], partitions=6, **(replication or {}))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=idempotent, linger_ms=2
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{run}",
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    value = b"x" * size
    try:
        began = time.perf_counter()

        async def produce() -> None:
            await send_all(
                producer, [(topic, f"sim-{i % max(keys, 1)}", value) for i in range(count)]
            )

        async def consume() -> float:
            got = 0
            while got < count:
                fetched = await consumer.getmany(timeout_ms=500)
                got += sum(len(batch) for batch in fetched.values())
            return time.perf_counter()

        _, done = await asyncio.gather(produce(), consume())
        return count / (done - began)
    finally:
        await producer.stop()
        await consumer.stop()
