"""Reading topics to their real ends: what the cluster driver, the benchmarks and the
end-to-end tests use to count and read what the services wrote, on Apache Kafka and
on the Tansu fallback alike."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.topics import ALL_TOPICS

#: A probe's fetch returns at once when records are there; otherwise it waits this long
#: (the development broker always waits the whole of it).
PROBE_FETCH_WAIT_MS = 20


def partitions(topics: list[str]) -> list[TopicPartition]:
    by_name = {t.name: t for t in ALL_TOPICS}
    return [TopicPartition(t, p) for t in topics for p in range(by_name[t].partitions)]


async def true_end_offsets(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offset after each partition's last record. The broker's answer is a lower
    bound: Tansu 0.6 reports one past the *first* record of the last batch written
    (seen: 21 records in three batches of 7, end offset 15), so the records from
    there on are read to find the real end. ``consumer`` must not be subscribed;
    its assignment is replaced."""
    ends = await consumer.end_offsets(parts)
    tail = [tp for tp in parts if ends[tp] > 0]
    if not tail:
        return ends
    consumer.assign(tail)
    for tp in tail:
        consumer.seek(tp, ends[tp] - 1)
    waiting = set(tail)  # each has at least the record at its reported end - 1
    while waiting:
        fetched = await consumer.getmany(*tail, timeout_ms=1000, max_records=10_000)
        if not fetched:
            break  # the broker answered nothing in a second: keep its figures
        for tp, records in fetched.items():
            ends[tp] = max(ends[tp], records[-1].offset + 1)
            waiting.discard(tp)
    for tp, records in (await consumer.getmany(*tail, timeout_ms=0)).items():
        ends[tp] = max(ends[tp], records[-1].offset + 1)  # what was fetched meanwhile
    return ends


async def commit_ends(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit ``group``'s offsets at the current (real) ends of ``topics``."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=PROBE_FETCH_WAIT_MS,
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await reader.start()
    await consumer.start()
    try:
        parts = partitions(topics)
        ends = await true_end_offsets(reader, parts)
        consumer.assign(parts)
        await consumer.commit({tp: ends[tp] for tp in parts})
    finally:
        await consumer.stop()
        await reader.stop()


async def read_all(bootstrap: str, topics: list[str]) -> list[ConsumerRecord]:
    """Every record on ``topics`` up to their current ends."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = partitions(topics)
        ends = await true_end_offsets(consumer, parts)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[ConsumerRecord] = []
        while any([await consumer.position(p) < ends[p] for p in parts]):
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()
