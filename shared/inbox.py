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


async def claim_many(conn: asyncpg.Connection, claims: list[tuple[str, str, str]]) -> list[Seen]:
    """Claim ``(source, id, digest)`` for each message, in two statements per batch.
    Within the batch the first of two equal ids is the new one, as it would be if
    the messages came one by one."""
    if not claims:
        return []
    first: dict[tuple[str, str], str] = {}
    for source, id_, body in claims:
        first.setdefault((source, id_), body)
    sources, ids, digests = zip(*[(s, i, d) for (s, i), d in first.items()], strict=True)
    inserted = await conn.fetch(
        "INSERT INTO inbox (source, id, digest)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[])"
        " ON CONFLICT DO NOTHING RETURNING source, id",
        list(sources),
        list(ids),
        list(digests),
    )
    fresh = {(r["source"], r["id"]) for r in inserted}
    stored = await _stored_digests(conn, [k for k in first if k not in fresh])
    stored.update({k: first[k] for k in fresh})
    out, seen_here = [], set()
    for source, id_, body in claims:
        key = (source, id_)
        if key in fresh and key not in seen_here:
            out.append(Seen.NEW)
        else:
            out.append(Seen.REPEAT if stored[key] == body else Seen.CONFLICT)
        seen_here.add(key)
    return out


async def _stored_digests(
    conn: asyncpg.Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    if not keys:
        return {}
    sources, ids = zip(*keys, strict=True)
    rows = await conn.fetch(
        "SELECT i.source, i.id, i.digest FROM inbox i"
        " JOIN unnest($1::text[], $2::text[]) AS k(source, id)"
        " ON i.source = k.source AND i.id = k.id",
        list(sources),
        list(ids),
    )
    return {(r["source"], r["id"]): r["digest"] for r in rows}
