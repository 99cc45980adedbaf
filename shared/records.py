"""Kafka records of NTX events, one way everywhere: an envelope becomes ``(topic, key,
value)`` by :func:`record` (the outbox, ``ntx send``, the cluster driver), and one
producer sends records in order and waits for all their acknowledgements
(:func:`send_each`, :func:`send_all`).

Every record leaves in the CloudEvents Kafka binding's structured mode, its headers
derived from its value as it is sent (:func:`shared.kafka_binding.headers_for`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from shared.kafka_binding import headers_for
from shared.topics import event_type

#: ``(topic, key, value)``; a key as text (a patient id) or bytes (as it came).
Record = tuple[str, str | bytes | None, bytes | None]


def encode(value: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the same envelope is always the same bytes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def record(envelope: dict[str, Any]) -> tuple[str, str, bytes]:
    """A CloudEvent's record: its type's registered topic, keyed by the patient."""
    return event_type(envelope["type"]).topic.name, envelope["subject"], encode(envelope)


async def send_each(producer: Any, records: Sequence[Record]) -> list[BaseException | None]:
    """Send ``records`` in order with one aiokafka producer (in order per partition)
    and wait for them all; each one's outcome, None when acknowledged. A record the
    producer refuses before sending (too large) fails alone."""
    pending: list[Any] = []
    for topic, key, value in records:
        try:
            headers = headers_for(value)
            pending.append(await producer.send(topic, value, key=_key_bytes(key), headers=headers))
        except Exception as exc:
            pending.append(exc)
    sent = [p for p in pending if not isinstance(p, BaseException)]
    acks = iter(await asyncio.gather(*sent, return_exceptions=True))
    return [p if isinstance(p, BaseException) else _error_or_none(next(acks)) for p in pending]


async def send_all(producer: Any, records: Sequence[Record]) -> None:
    """:func:`send_each`, raising the first failure once all are settled."""
    for outcome in await send_each(producer, records):
        if outcome is not None:
            raise outcome


def _key_bytes(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


def _error_or_none(ack: object) -> BaseException | None:
    return ack if isinstance(ack, BaseException) else None
