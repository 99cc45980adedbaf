"""Inbox dedupe (DESIGN.md §5): the ``source``+``id`` of each handled message is
written in the same transaction as its effects; a repeat is skipped, and an id reused
with a different body is refused (it goes to the dead-letter topic)."""

from __future__ import annotations

import hashlib
from enum import Enum

import asyncpg


class Seen(Enum):
    NEW = "new"
    REPEAT = "repeat"
    CONFLICT = "conflict"


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


async def claim(conn: asyncpg.Connection, source: str, id_: str, body_digest: str) -> Seen:
    inserted = await conn.fetchval(
        "INSERT INTO inbox (source, id, digest) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        source,
        id_,
        body_digest,
    )
    if inserted:
        return Seen.NEW
    stored = await conn.fetchval(
        "SELECT digest FROM inbox WHERE source = $1 AND id = $2", source, id_
    )
    return Seen.REPEAT if stored == body_digest else Seen.CONFLICT
