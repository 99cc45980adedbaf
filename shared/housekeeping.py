"""Keeps the plumbing tables bounded: published outbox rows and old inbox entries are
deleted in small chunks after their retention (settings), so a busy service's tables
stay the size of its recent traffic, not of its history."""

from __future__ import annotations

import asyncpg

from shared.settings import Settings

#: Rows per DELETE: short statements, so pruning never holds locks for long.
CHUNK = 5000


async def prune(conn: asyncpg.Connection, settings: Settings) -> dict[str, int]:
    return {
        "outbox": await _prune(
            conn, "outbox", "sent_at IS NOT NULL AND sent_at <", settings.outbox_keep_s
        ),
        "inbox": await _prune(conn, "inbox", "handled_at <", settings.inbox_keep_s),
    }


async def _prune(conn: asyncpg.Connection, table: str, older: str, keep_s: float) -> int:
    deleted = 0
    while True:
        status = await conn.execute(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table}"
            f" WHERE {older} now() - make_interval(secs => $1) LIMIT $2))",
            keep_s,
            CHUNK,
        )
        count = int(status.split()[-1])
        deleted += count
        if count < CHUNK:
            return deleted
