"""A downstream consumer for the benchmark: what arrives on a topic from now on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer

from services.topic_reading import partitions


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
