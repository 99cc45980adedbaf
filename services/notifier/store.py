"""The delivery repository in PostgreSQL (the notifier's schema, migrations beside
this module): the same contract as the in-memory one
(``tests/unit/notifier/test_repository.py`` runs both).

Each write is one transaction, and an outcome event goes to the outbox in the
transaction that finishes its delivery, so a kill -9 at any point neither loses
an outcome nor queues one twice (the ``outcomes`` table keys them by event id).
Built over a pool (the delivery loop) or over a connection already inside a
transaction (the consumer's unit of work), where each write is a savepoint.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from services.notifier import tables
from services.notifier.domain.delivery import SOURCE, Delivery, Outcome, Settled
from services.notifier.repository import Attempt, Key
from shared import events as ev
from shared import outbox
from shared.envelope import build
from shared.topics import DELIVERIES

#: The notifier's own migrations (after the plumbing's, in its schema).
MIGRATIONS = Path(__file__).parent / "migrations"

COLUMNS = (
    "notification_id, endpoint, patient_id, alert_id, alert, audience, body, accepted_at,"
    " state, attempts, next_attempt_at, last_status, finished_at"
)
ADD = (
    f"INSERT INTO deliveries ({COLUMNS})"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::text[], $7::bytea[], $8::timestamptz[], $9::text[], $10::int[],"
    " $11::timestamptz[], $12::text[], $13::timestamptz[])"
    " ON CONFLICT DO NOTHING RETURNING notification_id, endpoint"
)
#: Per endpoint, its earliest due deliveries up to its free slots; rows another
#: worker is claiming are skipped, and each claimed row's due time becomes the
#: lease's end.
CLAIM = f"""
WITH chosen AS (
    SELECT d.notification_id, d.endpoint, d.next_attempt_at AS due_at
    FROM unnest($3::text[], $4::int[]) AS s(name, slots)
    CROSS JOIN LATERAL (
        SELECT notification_id, endpoint, next_attempt_at FROM deliveries
        WHERE state = 'pending' AND endpoint = s.name AND next_attempt_at <= $1
        ORDER BY next_attempt_at, accepted_at, notification_id
        LIMIT s.slots FOR UPDATE SKIP LOCKED
    ) AS d
)
UPDATE deliveries AS d SET next_attempt_at = $2 FROM chosen
WHERE d.notification_id = chosen.notification_id AND d.endpoint = chosen.endpoint
RETURNING chosen.due_at, {", ".join("d." + c.strip() for c in COLUMNS.split(","))}
"""
#: Each settled delivery stored if it is still as its writer claimed it (pending,
#: with the attempts before this one); returns the positions stored.
RECORD = """
UPDATE deliveries AS d SET state = r.state, attempts = r.attempts,
    next_attempt_at = r.next_at, last_status = r.status, finished_at = r.finished
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::text[],
            $7::timestamptz[], $8::int[], $9::int[])
    AS r(nid, endpoint, state, attempts, next_at, status, finished, before, pos)
WHERE d.notification_id = r.nid AND d.endpoint = r.endpoint
    AND d.state = 'pending' AND d.attempts = r.before
RETURNING r.pos
"""
ATTEMPTS = (
    "INSERT INTO delivery_attempts (notification_id, endpoint, number, at, status,"
    " retry_after_s) SELECT * FROM unnest($1::text[], $2::text[], $3::int[],"
    " $4::timestamptz[], $5::text[], $6::float8[]) ON CONFLICT DO NOTHING"
)
OUTCOMES = (
    "INSERT INTO outcomes (id, type, notification_id, endpoint, status, at)"
    " SELECT i, t, n, e, s, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
    " $5::text[]) AS r(i, t, n, e, s) ON CONFLICT DO NOTHING RETURNING id"
)


class PostgresDeliveryRepository:
    def __init__(
        self,
        db: asyncpg.Pool | asyncpg.Connection,
        now: Callable[[], datetime],
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        """``db``: a pool, or a connection inside the caller's transaction; ``now``
        stamps the outcome events (the service's clock); ``on_queued`` is called
        after outcome events were queued (the service wakes its relay)."""
        self.db, self.now, self.on_queued = db, now, on_queued

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        if isinstance(self.db, asyncpg.Pool):
            async with self.db.acquire() as conn, conn.transaction():
                yield conn
        else:
            async with self.db.transaction():
                yield self.db

    async def add(self, deliveries: Sequence[Delivery], outcomes: Sequence[Outcome]) -> int:
        async with self._transaction() as conn:
            fresh: set[Key] = set()
            if deliveries:
                rows = await conn.fetch(ADD, *tables.columns([tables.row(d) for d in deliveries]))
                fresh = {(r["notification_id"], r["endpoint"]) for r in rows}
            await self._publish(
                conn,
                [
                    o
                    for o in outcomes
                    if o.data.endpoint is None or (o.data.notification_id, o.data.endpoint) in fresh
                ],
            )
            return len(fresh)

    async def claim(
        self, now: datetime, lease_until: datetime, slots: Mapping[str, int]
    ) -> list[Delivery]:
        if not slots:
            return []
        names = sorted(slots)
        async with self._transaction() as conn:
            rows = await conn.fetch(CLAIM, now, lease_until, names, [slots[n] for n in names])
        rows = sorted(rows, key=lambda r: (r["due_at"], r["accepted_at"], r["notification_id"]))
        return [tables.delivery(r) for r in rows]

    async def record(self, settled: Settled, attempt: Attempt | None) -> bool:
        return (await self.record_many([(settled, attempt)]))[0]

    async def record_many(self, recorded: Sequence[tuple[Settled, Attempt | None]]) -> list[bool]:
        if not recorded:
            return []
        rows = [tables.recorded_row(pos, s, a) for pos, (s, a) in enumerate(recorded)]
        async with self._transaction() as conn:
            stored = {r["pos"] for r in await conn.fetch(RECORD, *tables.columns(rows))}
            attempts = [
                tables.attempt_row(a) for pos, (_, a) in enumerate(recorded) if pos in stored and a
            ]
            if attempts:
                await conn.execute(ATTEMPTS, *tables.columns(attempts))
            outcomes = [s.outcome for pos, (s, _) in enumerate(recorded) if pos in stored]
            await self._publish(conn, [o for o in outcomes if o is not None])
        return [pos in stored for pos in range(len(recorded))]

    async def get(self, key: Key) -> Delivery | None:
        row = await self.db.fetchrow(
            f"SELECT {COLUMNS} FROM deliveries WHERE notification_id = $1 AND endpoint = $2",
            *key,
        )
        return tables.delivery(row) if row else None

    async def pending_for(self, endpoint: str) -> list[Delivery]:
        return await self._select("state = 'pending' AND endpoint = $1", endpoint)

    async def pending_endpoints(self) -> set[str]:
        rows = await self.db.fetch(
            "SELECT DISTINCT endpoint FROM deliveries WHERE state = 'pending'"
        )
        return {r["endpoint"] for r in rows}

    async def for_alert(self, alert_id: str) -> list[Delivery]:
        return await self._select("alert_id = $1", alert_id)

    async def attempts(self, key: Key) -> list[Attempt]:
        rows = await self.db.fetch(
            "SELECT number, at, status, retry_after_s FROM delivery_attempts"
            " WHERE notification_id = $1 AND endpoint = $2 ORDER BY number",
            *key,
        )
        return [
            Attempt(
                key[0],
                key[1],
                r["number"],
                r["at"],
                tables.status(r["status"]),  # type: ignore[arg-type]
                timedelta(seconds=r["retry_after_s"]) if r["retry_after_s"] is not None else None,
            )
            for r in rows
        ]

    async def disable_endpoint(self, name: str, at: datetime) -> None:
        await self.db.execute(
            "INSERT INTO disabled_endpoints (name, disabled_at) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING",
            name,
            at,
        )

    async def disabled_endpoints(self) -> frozenset[str]:
        rows = await self.db.fetch("SELECT name FROM disabled_endpoints")
        return frozenset(r["name"] for r in rows)

    async def published_outcomes(self) -> list[Outcome]:
        """The outcome events in the outbox, in the order they are published."""
        rows = await self.db.fetch(
            "SELECT value FROM outbox WHERE topic = $1 ORDER BY id", DELIVERIES.name
        )
        found = []
        for r in rows:
            event = json.loads(r["value"])
            data = ev.NotificationOutcome.model_validate(event["data"])
            found.append(Outcome(event["type"], event["id"], data))
        return found

    async def _select(self, where: str, *args: Any) -> list[Delivery]:
        rows = await self.db.fetch(
            f"SELECT {COLUMNS} FROM deliveries WHERE {where}"
            " ORDER BY accepted_at, notification_id, endpoint",
            *args,
        )
        return [tables.delivery(r) for r in rows]

    async def _publish(self, conn: asyncpg.Connection, outcomes: Sequence[Outcome]) -> None:
        """Queue each outcome not queued before (by its event id), in order."""
        if not outcomes:
            return
        now = self.now()
        rows = [
            (o.id, o.type, o.data.notification_id, o.data.endpoint, str(o.data.status))
            for o in outcomes
        ]
        fresh = {r["id"] for r in await conn.fetch(OUTCOMES, *tables.columns(rows), now)}
        envelopes = [
            build(
                o.type,
                o.data,
                source=SOURCE,
                time=now,
                id_=o.id,
                causationid=o.data.notification_id,
            )
            for o in outcomes
            if o.id in fresh
        ]
        await outbox.enqueue_events(conn, envelopes)
        if envelopes:
            self.on_queued()
