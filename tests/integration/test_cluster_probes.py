"""The cluster's quiet check needs each partition's real end: a broker whose end
offset lags behind the records written (Tansu 0.6 reports one past the first record
of the last batch) would let a simulation move its clock on while a message waits."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.topic_reading import true_end_offsets
from shared.infra import create_topics

pytestmark = pytest.mark.infra


async def test_true_end_offsets_count_every_record_of_batched_writes(infra, unique):
    topic = f"probe.{unique}"
    await create_topics(infra.bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for _ in range(3):  # three batches of seven records
            sent = [await producer.send(topic, b"x", key=b"k") for _ in range(7)]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        assert await true_end_offsets(consumer, [tp]) == {tp: 21}
    finally:
        await consumer.stop()
