"""Reading topics for the benchmark: everything so far, or what arrives from now on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.topics import ALL_TOPICS

PARTITIONS = {t.name: t.partitions for t in ALL_TOPICS}


def partitions(topics: list[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in range(PARTITIONS[t])]


async def read_all(bootstrap: str, topics: list[str]) -> list[ConsumerRecord]:
    """Every record on ``topics`` up to their current ends."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = partitions(topics)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[ConsumerRecord] = []
        while any([await consumer.position(p) < ends[p] for p in parts]):
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def watching(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A downstream consumer of ``topic`` from its current end: it reads what arrives
    from now on, fetching every 10 ms (a broker without long-poll wake-ups would
    otherwise add its fetch wait to every reading)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        parts = partitions([topic])
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        yield consumer
    finally:
        await consumer.stop()
