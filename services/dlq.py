"""``ntx dlq list`` and ``ntx dlq replay ID [--file FIXED]``: operators inspect dead
letters (kept in each service's ``dead_letters`` table, as the broker is not the
system of record) and re-submit one, as it was or corrected, to its topic."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from argparse import Namespace

import asyncpg

from services.bootstrap import SERVICES
from services.tools import publish_raw, read_events
from shared import db
from shared.records import encode
from shared.settings import get_settings


async def _letters(name: str) -> list[dict]:
    conn = await db.connect(get_settings().database_url_for(name), name)
    try:
        rows = await conn.fetch(
            'SELECT id, topic, partition, "offset", key, reason, field, received_at, replayed_at'
            " FROM dead_letters ORDER BY received_at, id"
        )
    except asyncpg.UndefinedTableError:
        return []  # that service is not migrated here
    finally:
        await conn.close()
    return [{"service": name, **{k: _plain(v) for k, v in dict(r).items()}} for r in rows]


def _plain(value: object) -> object:
    return value if isinstance(value, str | int | type(None)) else str(value)


def list_letters() -> int:
    async def go() -> list[dict]:
        found = []
        for name in SERVICES:
            found.extend(await _letters(name))
        return found

    for letter in asyncio.run(go()):
        print(json.dumps(letter))
    return 0


def replay(letter_id: str, fixed_path: str | None) -> int:
    try:
        uuid.UUID(letter_id)
        fixed = read_events(fixed_path) if fixed_path else None
    except (ValueError, OSError) as exc:
        print(f"ntx dlq replay: invalid input: {exc}", file=sys.stderr)
        return 2
    found = asyncio.run(_replay(letter_id, fixed))
    if not found:
        print(f"ntx dlq replay: invalid input: id: no dead letter {letter_id}", file=sys.stderr)
        return 2
    print(json.dumps({"replayed": letter_id, "topic": found}))
    return 0


async def _replay(letter_id: str, fixed: list[dict] | None) -> str | None:
    for name in SERVICES:
        conn = await db.connect(get_settings().database_url_for(name), name)
        try:
            try:
                row = await conn.fetchrow(
                    "SELECT topic, key, original_key, original FROM dead_letters WHERE id = $1",
                    uuid.UUID(letter_id),
                )
            except asyncpg.UndefinedTableError:
                continue
            if row is None:
                continue
            # exactly as it came: the key as bytes (the key column is an escaped form)
            # and a null value as null
            original = bytes(row["original"]) if row["original"] is not None else None
            value = encode(fixed[0]) if fixed else original
            key = bytes(row["original_key"]) if row["original_key"] is not None else row["key"]
            await publish_raw([(row["topic"], key, value)])
            await conn.execute(
                "UPDATE dead_letters SET replayed_at = now() WHERE id = $1", uuid.UUID(letter_id)
            )
            return row["topic"]
        finally:
            await conn.close()
    return None


def main(args: Namespace) -> int:
    if args.dlq_command == "list":
        return list_letters()
    return replay(args.id, getattr(args, "file", None))
