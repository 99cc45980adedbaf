"""``ntx deliveries list`` and ``ntx deliveries retry ID [--endpoint NAME]``: operators
see the notifier's pending and failed deliveries (one JSON object a line, ids and
codes only) and send a failed one again, as ``ntx dlq`` does for dead letters.

A retry puts the delivery back to pending, due at once (its due time becomes the
moment it was accepted, so whatever clock the notifier runs on it is due, and it
goes first), for the running notifier to attempt; its endpoint, if a 410 disabled it, is enabled again (the operator asking
for a retry says the receiver is back). The retry horizon still counts from the
request, so a retry past it is one more attempt: if that fails too,
``notification.failed`` is published again with the new attempt count.
"""

from __future__ import annotations

import asyncio
import json
import sys
from argparse import Namespace
from typing import Any

import asyncpg

from services.bootstrap import schema_for
from shared import db
from shared.settings import get_settings

SERVICE = "notifier"
FINISHED_UNDELIVERED = ("failed", "endpoint_disabled")
LIST = (
    "SELECT notification_id, endpoint, alert_id, alert, audience, state, attempts,"
    " last_status, accepted_at, next_attempt_at, finished_at FROM deliveries"
    " WHERE state <> 'delivered' ORDER BY accepted_at, notification_id, endpoint"
)
#: Requests no endpoint was configured for: failed at once, with no delivery row.
UNADDRESSED = (
    "SELECT notification_id, status, at FROM outcomes WHERE endpoint IS NULL ORDER BY at, id"
)
RETRY = (
    "UPDATE deliveries SET state = 'pending', next_attempt_at = accepted_at, finished_at = NULL"
    " WHERE notification_id = $1 AND ($2::text IS NULL OR endpoint = $2)"
    " AND state = ANY($3::text[]) RETURNING endpoint"
)


async def _connect() -> asyncpg.Connection:
    return await db.connect(get_settings().database_url_for(SERVICE), schema_for(SERVICE))


async def _listed() -> list[dict[str, Any]]:
    conn = await _connect()
    try:
        rows = [dict(r) for r in await conn.fetch(LIST)]
        for r in await conn.fetch(UNADDRESSED):
            rows.append(
                {
                    "notification_id": r["notification_id"],
                    "endpoint": None,
                    "state": "failed",
                    "attempts": 0,
                    "last_status": r["status"],
                    "finished_at": r["at"],
                }
            )
    except asyncpg.UndefinedTableError:
        return []  # the notifier is not migrated here
    finally:
        await conn.close()
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def _plain(value: object) -> object:
    if isinstance(value, str) and value.isdigit():
        return int(value)  # an HTTP status
    return value if isinstance(value, str | int | type(None)) else str(value)


def list_deliveries() -> int:
    for row in asyncio.run(_listed()):
        print(json.dumps(row))
    return 0


async def _retry(notification_id: str, endpoint: str | None) -> list[str]:
    conn = await _connect()
    try:
        async with conn.transaction():
            rows = await conn.fetch(RETRY, notification_id, endpoint, list(FINISHED_UNDELIVERED))
            names = sorted({r["endpoint"] for r in rows})
            await conn.execute("DELETE FROM disabled_endpoints WHERE name = ANY($1)", names)
        return names
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


def retry(notification_id: str, endpoint: str | None) -> int:
    endpoints = asyncio.run(_retry(notification_id, endpoint))
    if not endpoints:
        where = f" to endpoint {endpoint}" if endpoint else ""
        print(
            f"ntx deliveries retry: invalid input: id: no failed delivery {notification_id}{where}",
            file=sys.stderr,
        )
        return 2
    print(json.dumps({"retried": notification_id, "endpoints": endpoints}))
    return 0


def main(args: Namespace) -> int:
    if args.deliveries_command == "list":
        return list_deliveries()
    return retry(args.id, args.endpoint)
