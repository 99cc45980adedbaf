"""Operator commands: ``ntx send`` (publish events from a file) and ``ntx migrate``."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from shared import db
from shared.envelope import InvalidEvent, parse
from shared.infra import create_topics
from shared.outbox import encode
from shared.settings import get_settings
from shared.topics import EVENT_TYPES, event_type
from shared.types import format_utc


def read_events(path: str) -> list[dict]:
    """A JSON object, a JSON array, or JSON lines; each a CloudEvents message."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    if text.startswith("{") and "\n{" not in text:
        return [json.loads(text)]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def send(path: str, *, unchecked: bool = False, now: bool = False) -> int:
    try:
        events = read_events(path)
        if now:
            events = rebase(events, datetime.now(UTC))
        for n, message in enumerate(events, 1):
            _check(n, message, unchecked)
    except (OSError, ValueError) as exc:
        print(f"ntx send: invalid input: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_publish(events))
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


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_LOCAL_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def rebase(messages: list[dict], now: datetime) -> list[dict]:
    """The messages moved in time so the newest happens ``now``: every instant and
    local time by the same offset, every date by its whole days, each with a fresh id
    (a moved message is a new one). Example files stay valid on any day."""
    try:
        latest = max(datetime.fromisoformat(m["time"]) for m in messages)
    except (KeyError, TypeError, ValueError):
        raise ValueError("time: every message needs an RFC 3339 time to move by") from None
    shift = now - latest
    days = timedelta(days=shift.days)  # whole days, rounded down: never into the future

    def move(value: object) -> object:
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if not isinstance(value, str):
            return value
        if _INSTANT.match(value):
            return format_utc(datetime.fromisoformat(value) + shift)
        if _LOCAL_MINUTE.match(value):
            return (datetime.fromisoformat(value) + shift).strftime("%Y-%m-%dT%H:%M")
        if _DATE.match(value):
            return (date.fromisoformat(value) + days).isoformat()
        return value

    return [{**move(m), "id": str(uuid.uuid4())} for m in messages]


def _check(n: int, message: dict, unchecked: bool) -> None:
    """Validate before sending; unchecked still needs a routable type and subject."""
    if not isinstance(message, dict) or message.get("type") not in EVENT_TYPES:
        raise ValueError(f"message {n}: type: unknown or missing event type")
    if not isinstance(message.get("subject"), str):
        raise ValueError(f"message {n}: subject: required")
    if not unchecked:
        try:
            parse(encode(message))
        except InvalidEvent as exc:
            raise ValueError(f"message {n}: {exc}") from None


async def _publish(events: list[dict]) -> None:
    await publish_raw([(event_type(m["type"]).topic.name, m["subject"], encode(m)) for m in events])


async def publish_raw(
    messages: list[tuple[str, str | None, bytes]], bootstrap: str | None = None
) -> None:
    """Send ``(topic, key, value)`` messages with one idempotent producer, acks=all."""
    settings = get_settings()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap or settings.kafka_bootstrap,
        **settings.producer_options(),  # acks=all, idempotent
    )
    await producer.start()
    try:
        # in order per partition (one producer); acknowledged all together
        sent = [
            await producer.send(topic, value, key=key.encode() if key is not None else None)
            for topic, key, value in messages
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def migrate(service: str) -> int:
    from services.worker import SERVICES, load_spec

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
