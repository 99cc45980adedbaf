"""The gateway's repositories in PostgreSQL (its schema, migrations beside this
module), on the connection of the request's unit of work: identities, held results
and sent event ids are written in the transaction that writes the events to the
outbox, so a refused or failed request leaves none of them behind.

Identifiers are stored as sent (system, value), not hashed: the care team acting on
an alert must find the person behind a ``patient_id``, which a keyed hash cannot
give back, and the schema is readable only by the gateway's role."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.gateway.domain.identity import Identifier
from services.gateway.domain.pairing import HeldResult, Resulted
from services.gateway.repository import GatewayRepos

#: The gateway's own migrations (after the plumbing's, in its schema).
MIGRATIONS = Path(__file__).parent / "migrations"

#: Requests naming the same identifier wait for each other (sorted: no deadlock), so
#: two first requests for one new patient cannot mint two pseudonyms.
LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended('gateway-identity|' || s || '|' || v, 0))"
    " FROM unnest($1::text[], $2::text[]) AS i(s, v) ORDER BY s, v"
)
FIND = (
    "SELECT system, value, patient_id FROM patient_identifiers"
    " WHERE (system, value) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)
LINK = (
    "INSERT INTO patient_identifiers (system, value, patient_id, linked_at)"
    " SELECT s, v, p, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS l(s, v, p)"
    " ON CONFLICT DO NOTHING"
)
HELD = "patient_id, analyte, collected_at, value, uln, key, resource, path, held_at"
HOLD = (
    f"INSERT INTO held_results ({HELD}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (patient_id, collected_at, analyte) DO UPDATE SET value = $4, uln = $5,"
    " key = $6, resource = $7, path = $8, held_at = $9"
)
WHERE_HELD = "WHERE patient_id = $1 AND collected_at = $2 AND analyte = $3"
RESULTED = (
    "INSERT INTO resulted_parts (patient_id, collected_at, analyte, key)"
    " SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[])"
    " ON CONFLICT DO NOTHING"
)
WAS_RESULTED = (
    "SELECT true FROM resulted_parts"
    " WHERE patient_id = $1 AND collected_at = $2 AND analyte = $3 AND key = $4"
)
SENT = (
    "INSERT INTO sent_events (event_id, type, sent_at)"
    " SELECT i, t, $3 FROM unnest($1::text[], $2::text[]) AS e(i, t)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


def _columns(identifiers: Iterable[Identifier]) -> tuple[list[str], list[str]]:
    pairs = sorted(identifiers)
    return [s for s, _ in pairs], [v for _, v in pairs]


class PgPatientIds:
    def __init__(self, conn: asyncpg.Connection, now: datetime):
        self.conn, self.now = conn, now

    async def find(self, identifiers: Collection[Identifier]) -> dict[Identifier, str]:
        systems, values = _columns(identifiers)
        await self.conn.execute(LOCK, systems, values)
        rows = await self.conn.fetch(FIND, systems, values)
        return {(r["system"], r["value"]): r["patient_id"] for r in rows}

    async def link(self, links: Mapping[Identifier, str]) -> None:
        systems, values = _columns(links)
        ids = [links[(s, v)] for s, v in zip(systems, values, strict=True)]
        await self.conn.execute(LINK, systems, values, ids, self.now)


class PgPendingResults:
    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn

    async def peek(self, patient_id: str, collected_at: datetime, analyte: str):  # type: ignore[no-untyped-def]
        row = await self.conn.fetchrow(
            f"SELECT {HELD} FROM held_results {WHERE_HELD}", patient_id, collected_at, analyte
        )
        return _held(row)

    async def take(self, patient_id: str, collected_at: datetime, analyte: str):  # type: ignore[no-untyped-def]
        row = await self.conn.fetchrow(
            f"DELETE FROM held_results {WHERE_HELD} RETURNING {HELD}",
            patient_id,
            collected_at,
            analyte,
        )
        return _held(row)

    async def hold(self, result: HeldResult) -> None:
        r = result
        await self.conn.execute(
            HOLD,
            r.patient_id,
            r.analyte,
            r.collected_at,
            r.value,
            r.uln,
            r.key,
            r.resource,
            r.path,
            r.held_at,
        )

    async def resulted(self, parts: Iterable[Resulted]) -> None:
        rows = list(parts)
        if rows:
            await self.conn.execute(RESULTED, *map(list, zip(*rows, strict=True)))

    async def was_resulted(self, part: Resulted) -> bool:
        return bool(await self.conn.fetchval(WAS_RESULTED, *part))

    async def expire(self, held_before: datetime) -> list[HeldResult]:
        rows = await self.conn.fetch(
            f"DELETE FROM held_results WHERE held_at < $1 RETURNING {HELD}", held_before
        )
        return sorted((_row(r) for r in rows), key=lambda h: (h.held_at, h.patient_id))


def _held(row: asyncpg.Record | None) -> HeldResult | None:
    return None if row is None else _row(row)


def _row(row: asyncpg.Record) -> HeldResult:
    return HeldResult(**dict(row))


class PgSentEvents:
    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn

    async def first_time(self, events: Iterable[dict[str, Any]], at: datetime) -> set[str]:
        listed = list(events)
        rows = await self.conn.fetch(
            SENT, [e["id"] for e in listed], [e["type"] for e in listed], at
        )
        return {r["event_id"] for r in rows}


def on_connection(conn: asyncpg.Connection, now: datetime) -> GatewayRepos:
    return GatewayRepos(PgPatientIds(conn, now), PgPendingResults(conn), PgSentEvents(conn))
