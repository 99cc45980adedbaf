"""Test harness: a Runtime fed by a plain aiokafka consumer, so plumbing tests run
in-process against the real broker and database without a faust worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.clock import SimulatedClock
from shared.runtime import Message, Runtime, ServiceSpec
from shared.settings import Settings


def settings_for(infra, **overrides) -> Settings:
    return Settings(kafka_bootstrap=infra.bootstrap, database_url=infra.database_url, **overrides)


class Harness:
    """Runs ``runtime`` and pumps its topics (optionally renamed) into ``process``."""

    def __init__(
        self,
        spec: ServiceSpec,
        infra,
        schema: str,
        *,
        clock=None,
        group: str | None = None,
        **settings,
    ):
        self.clock = clock or SimulatedClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
        self.runtime = Runtime(spec, settings_for(infra, **settings), self.clock, schema=schema)
        self.infra = infra
        self.group = group or f"g-{schema}"
        self.outcomes: list[tuple[str, bytes | None]] = []
        self.topics_seen: list[str] = []  # the topic of each outcome, in step
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Harness:
        await self.runtime.start()
        self.consumer = AIOKafkaConsumer(
            *[t.name for t in self.runtime.spec.topics],
            bootstrap_servers=self.infra.bootstrap,
            group_id=self.group,
            auto_offset_reset="earliest",
            enable_auto_commit=True,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            rebalance_timeout_ms=6000,
        )
        await self.consumer.start()
        self._task = asyncio.create_task(self._pump())
        return self

    async def _pump(self) -> None:
        """Batches as the faust agents hand them over: several partitions' messages,
        each partition's in order."""
        while True:
            fetched = await self.consumer.getmany(timeout_ms=100, max_records=200)
            msgs = [m for part in fetched.values() for m in part]
            if not msgs:
                continue
            batch = [
                Message(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers))
                for m in msgs
            ]
            outcomes = await self.runtime.process_batch(batch)
            self.outcomes.extend((o, m.key) for o, m in zip(outcomes, msgs, strict=True))
            self.topics_seen.extend(m.topic for m in msgs)

    def outcomes_for(self, patient: str, topic: str | None = None) -> list[str]:
        """The patient's outcomes in order; only those of messages on ``topic``, if
        given (a service also hears of a patient on its other input topics)."""
        return [
            o
            for (o, key), seen in zip(self.outcomes, self.topics_seen, strict=True)
            if key == patient.encode() and topic in (None, seen)
        ]

    async def __aexit__(self, *exc) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()
        await self.runtime.stop()


async def produce(bootstrap: str, topic: str, key: bytes | None, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def publish(bootstrap: str, topic: str, events: list[dict]) -> None:
    """``events`` on ``topic`` in one producer, each keyed by its ``subject``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, json.dumps(e).encode(), key=e["subject"].encode())
            for e in events
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, *, until, timeout: float = 30.0) -> list:
    """Read ``topic`` from the start until ``until(messages)`` is true or time runs out."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: list = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(seen) and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                seen.extend(msgs)
    finally:
        await consumer.stop()
    return seen


async def patient_messages(
    bootstrap: str, topic: str, patient: str, n: int, timeout: float = 30.0
) -> list[dict]:
    """The decoded messages keyed by ``patient`` once ``n`` of them are on ``topic``."""
    key = patient.encode()
    msgs = await read_topic(
        bootstrap, topic, until=lambda ms: sum(m.key == key for m in ms) >= n, timeout=timeout
    )
    return [json.loads(m.value) for m in msgs if m.key == key]


async def eventually(check, timeout: float = 30.0, interval: float = 0.1):
    """Poll an async ``check`` until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(interval)
