"""Keeps tables bounded: published outbox rows and old inbox entries are deleted in
small chunks after their retention (settings), so a busy service's tables stay the
size of its recent traffic, not of its history. Services prune their own tables with
:func:`delete_in_chunks` (the scheduler's emitted due items)."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.settings import Settings

#: Rows per DELETE: short statements, so pruning never holds locks for long.
CHUNK = 5000


async def prune(conn: asyncpg.Connection, settings: Settings) -> dict[str, int]:
    return {
        "outbox": await delete_in_chunks(
            conn,
            "outbox",
            "sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)",
            settings.outbox_keep_s,
        ),
        "inbox": await delete_in_chunks(
            conn, "inbox", "handled_at < now() - make_interval(secs => $1)", settings.inbox_keep_s
        ),
    }


async def delete_in_chunks(conn: asyncpg.Connection, table: str, where: str, *args: Any) -> int:
    """Delete the rows of ``table`` matching ``where`` (its parameters ``$1``.. are
    ``args``), ``CHUNK`` rows per statement; returns how many were deleted."""
    limit = f"${len(args) + 1}"
    deleted = 0
    while True:
        status = await conn.execute(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table}"
            f" WHERE {where} LIMIT {limit}))",
            *args,
            CHUNK,
        )
        count = int(status.split()[-1])
        deleted += count
        if count < CHUNK:
            return deleted
