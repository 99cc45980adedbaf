"""Dead letters: why a message was refused, kept whole in the service's
``dead_letters`` table and announced on ``ntx.dlq.v1``.

The table keeps the original bytes and key exactly as they came (bytea), so
``ntx dlq replay`` can send them again. The topic message must always be publishable:
it carries the original whole only up to :data:`EXCERPT_BYTES` (every message a
service could accept fits), else a prefix marked ``truncated``, with the size, a
digest and ``ref`` naming the row that holds the rest. Text that came from the sender
(key, field names) is escaped and bounded before it is stored or logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg
from pydantic import BaseModel, ConfigDict

from shared import outbox
from shared.envelope import MAX_MESSAGE_BYTES
from shared.ingress import Message, Refused
from shared.records import encode
from shared.topics import DLQ
from shared.types import UtcDateTime

if TYPE_CHECKING:
    from shared.plumbing import Plumbing

log = logging.getLogger("ntx.deadletter")

#: The most of an original a dead letter on the topic carries: as much as the largest
#: message a service accepts, so those travel whole and a 5 MB one cannot make the
#: letter itself unpublishable (base64 grows it by a third; brokers take 1 MiB).
EXCERPT_BYTES = MAX_MESSAGE_BYTES
#: Longest sender-chosen text (key, field path) kept in a letter or a log line.
MAX_TEXT = 200
MAX_REASON = 500


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    service: str
    topic: str
    partition: int | None
    offset: int | None
    key: str | None
    reason: str
    field: str | None
    #: The original, base64: whole up to EXCERPT_BYTES, else its first EXCERPT_BYTES
    #: (``truncated``); null for a null value (a tombstone).
    original_b64: str | None
    received_at: UtcDateTime
    original_size: int | None = None
    original_sha256: str | None = None
    truncated: bool = False
    #: Where the whole original is kept: ``<schema>.dead_letters/<id>``.
    ref: str | None = None


def printable(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """``text`` with control characters, NULs, surrogates and non-ASCII escaped
    (``\\x00``, ``\\ud800``), cut to ``limit``: safe for PostgreSQL text and logs."""
    if text is None:
        return None
    safe = text.encode("ascii", "backslashreplace").decode("ascii")
    safe = "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in safe)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    return printable(key.decode("utf-8", "backslashreplace"))


def dead_letter(
    service: str,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    raw: bytes | None,
    reason: str,
    field: str | None,
    now: datetime,
    *,
    schema: str | None = None,
) -> DeadLetter:
    # Same message, same letter id: a redelivery is not dead-lettered twice.
    digest = hashlib.sha256(raw).hexdigest() if raw is not None else "null"
    letter_id = uuid.uuid5(
        uuid.NAMESPACE_URL, f"ntx-dlq:{service}:{topic}:{partition}:{offset}:{digest}"
    )
    excerpt = raw[:EXCERPT_BYTES] if raw is not None else None
    return DeadLetter(
        id=str(letter_id),
        service=service,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key_text(key),
        reason=printable(reason, MAX_REASON) or "",
        field=printable(field),
        original_b64=base64.b64encode(excerpt).decode() if excerpt is not None else None,
        received_at=now,
        original_size=len(raw) if raw is not None else None,
        original_sha256=digest if raw is not None else None,
        truncated=raw is not None and len(raw) > EXCERPT_BYTES,
        ref=f"{schema or service}.dead_letters/{letter_id}",
    )


async def store(
    conn: asyncpg.Connection,
    letter: DeadLetter,
    key: bytes | None,
    raw: bytes | None,
    *,
    announce: bool = True,
) -> bool:
    """Keep ``letter`` with the original ``key`` and ``raw`` bytes, and (``announce``)
    queue it for ``ntx.dlq.v1`` in the same transaction. False if it was stored before."""
    fresh = await conn.fetchval(
        'INSERT INTO dead_letters (id, topic, partition, "offset", key, original_key, reason,'
        " field, original, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT DO NOTHING RETURNING true",
        uuid.UUID(letter.id),
        letter.topic,
        letter.partition,
        letter.offset,
        letter.key,
        key,
        letter.reason,
        letter.field,
        raw,
        letter.received_at,
    )
    if fresh and announce:
        await outbox.enqueue(conn, *announcement(letter))
    return bool(fresh)


def announcement(letter: DeadLetter) -> tuple[str, str | None, bytes]:
    """The outbox row that publishes ``letter`` on ``ntx.dlq.v1``."""
    return DLQ.name, letter.key, encode(letter.model_dump(mode="json"))


async def write(
    tables: Plumbing,
    message: Message,
    refusal: Refused,
    now: datetime,
    *,
    service: str,
    schema: str,
) -> None:
    """Dead-letter ``message`` for ``refusal``: the letter and its outbox row, in the
    caller's transaction, and a log line naming the field (never the value)."""
    letter = dead_letter(
        service,
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        refusal.reason,
        refusal.field,
        now,
        schema=schema,
    )
    await tables.store_letter(letter, message.key, message.value)
    log.warning(
        "dead letter",
        extra={
            "service": service,
            "topic": message.topic,
            "field": letter.field,
            "reason": letter.reason,
        },
    )


async def unpublishable(
    conn: asyncpg.Connection,
    service: str,
    schema: str,
    topic: str,
    key: str | None,
    value: bytes,
    error: BaseException,
    now: datetime,
) -> None:
    """An outbox row the broker will never take is dead-lettered (whole in the table,
    an excerpt on the topic) so the rows behind it go on. A dead letter that cannot
    be published itself stays in the table it was written to."""
    log.error(
        "outbox row not publishable",
        extra={"service": service, "topic": topic, "error": type(error).__name__},
    )
    if topic == DLQ.name:
        return
    reason = f"not publishable: {type(error).__name__} ({len(value)} bytes)"
    raw_key = key.encode() if key is not None else None
    letter = dead_letter(
        service, topic, None, None, raw_key, value, reason, "message", now, schema=schema
    )
    await store(conn, letter, raw_key, value)
