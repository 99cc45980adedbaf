"""Operator commands: ``ntx send`` (publish events from a file) and ``ntx migrate``."""

from __future__ import annotations

import asyncio
import json
import sys

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.sendfile import check_message, read_events, rebase
from shared import db
from shared.clock import clock_from_env
from shared.infra import create_topics
from shared.records import Record, record, send_all
from shared.settings import get_settings
from shared.topics import event_type

__all__ = ["migrate", "publish_raw", "read_events", "rebase", "send"]


def send(path: str, *, unchecked: bool = False, now: bool = False) -> int:
    try:
        events = read_events(path)
        clock = clock_from_env().now()
        if now:
            events = rebase(events, clock)
        for n, message in enumerate(events, 1):
            check_message(n, message, clock, unchecked=unchecked)
    except ValueError as exc:  # every input error names where and what
        print(f"ntx send: invalid input: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_publish(events))
    except (KafkaError, OSError) as exc:
        where = get_settings().kafka_bootstrap
        print(f"ntx send: not sent: {type(exc).__name__} (broker {where})", file=sys.stderr)
        return 1
    for message in events:
        print(
            json.dumps(
                {
                    "sent": message["type"],
                    "id": message["id"],
                    "topic": event_type(message["type"]).topic.name,
                }
            )
        )
    return 0


async def _publish(events: list[dict]) -> None:
    await publish_raw([record(m) for m in events])


async def publish_raw(messages: list[Record], bootstrap: str | None = None) -> None:
    """Send ``(topic, key, value)`` messages with one idempotent producer, acks=all."""
    settings = get_settings()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap or settings.kafka_bootstrap,
        **settings.producer_options(),  # acks=all, idempotent
    )
    try:
        await producer.start()
        await send_all(producer, messages)
    finally:
        await producer.stop()


def migrate(service: str) -> int:
    from services.bootstrap import SERVICES, load_spec

    settings = get_settings()
    names = SERVICES if service == "all" else (service,)

    async def go() -> None:
        created = await create_topics(settings.kafka_bootstrap, **settings.kafka_client_options())
        print(json.dumps({"topics_created": created}))
        for name in names:
            spec = load_spec(name)
            applied = await db.migrate(
                settings.database_url, name, spec.migrations, owner=db.service_role(name)
            )
            print(json.dumps({"service": name, "applied": applied}))

    asyncio.run(go())
    return 0
