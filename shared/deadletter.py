"""The dead-letter message on ``ntx.dlq.v1``: the original bytes and why they were refused."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.types import UtcDateTime


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
    original_b64: str
    received_at: UtcDateTime


def dead_letter(
    service: str,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    raw: bytes,
    reason: str,
    field: str | None,
    now: datetime,
) -> DeadLetter:
    # Same message, same letter id: a redelivery is not dead-lettered twice.
    digest = hashlib.sha256(raw).hexdigest()
    letter_id = uuid.uuid5(
        uuid.NAMESPACE_URL, f"ntx-dlq:{service}:{topic}:{partition}:{offset}:{digest}"
    )
    return DeadLetter(
        id=str(letter_id),
        service=service,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "replace") if key is not None else None,
        reason=reason,
        field=field,
        original_b64=base64.b64encode(raw).decode(),
        received_at=now,
    )


def original_bytes(letter: DeadLetter) -> bytes:
    return base64.b64decode(letter.original_b64)
