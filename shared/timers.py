"""Durable timers in PostgreSQL: set, cancel, and claim the due ones with
``FOR UPDATE SKIP LOCKED`` so several workers share them and none fires twice."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class TimerRow:
    patient_id: str
    key: str
    kind: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


async def set_timers(conn: asyncpg.Connection, timers: list[TimerRow]) -> None:
    """Upsert, in one statement: setting an existing ``(patient, key)`` replaces it.
    ``timers`` holds each ``(patient, key)`` once."""
    if not timers:
        return
    await conn.execute(
        "INSERT INTO timers (patient_id, key, kind, due_at, payload)"
        " SELECT p, k, t, d, j::jsonb"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])"
        " AS r(p, k, t, d, j)"
        " ON CONFLICT (patient_id, key) DO UPDATE"
        " SET kind = EXCLUDED.kind, due_at = EXCLUDED.due_at, payload = EXCLUDED.payload",
        [t.patient_id for t in timers],
        [t.key for t in timers],
        [t.kind for t in timers],
        [t.due_at for t in timers],
        [json.dumps(t.payload) for t in timers],
    )


async def cancel_many(conn: asyncpg.Connection, keys: list[tuple[str, str]]) -> None:
    """Delete the timers ``(patient_id, key)``, in one statement."""
    if keys:
        patients, names = zip(*keys, strict=True)
        await conn.execute(
            "DELETE FROM timers t USING unnest($1::text[], $2::text[]) AS k(patient_id, key)"
            " WHERE t.patient_id = k.patient_id AND t.key = k.key",
            list(patients),
            list(names),
        )


async def due_patients(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> tuple[list[str], bool]:
    """The patients of the ``limit`` longest-overdue timers, in that order (no rows
    locked), and whether more timers may be due beyond them."""
    rows = await conn.fetch(
        "SELECT patient_id FROM timers WHERE due_at <= $1 ORDER BY due_at LIMIT $2", now, limit
    )
    return list(dict.fromkeys(r["patient_id"] for r in rows)), len(rows) == limit


def fires_before_input(due_at: datetime, input_at: datetime) -> bool:
    """DESIGN.md §4.3 r2, the deadline instant: an input stamped exactly at a deadline
    is applied before the deadline fires (on time means at or before), so before an
    input at ``input_at`` only deadlines strictly earlier fire. The worker (through
    :func:`claim_due`), ``ntx alerts replay`` and the simulator all follow this rule;
    with no input at that instant, a deadline fires once its moment has come."""
    return due_at < input_at


async def claim_due(
    conn: asyncpg.Connection, now: datetime, patients: list[str], *, before_input: bool = False
) -> list[TimerRow]:
    """Lock and return the due timers of ``patients`` (whose locks the caller holds),
    oldest first; call inside a transaction and delete each with :func:`cancel_many`
    in that same transaction once handled. ``before_input``: only those that fire
    before an input arriving ``now`` (:func:`fires_before_input`)."""
    if not patients:
        return []
    due = "due_at < $1" if before_input else "due_at <= $1"
    rows = await conn.fetch(
        "SELECT patient_id, key, kind, due_at, payload FROM timers"
        f" WHERE {due} AND patient_id = ANY($2)"
        " ORDER BY due_at, patient_id, key FOR UPDATE SKIP LOCKED",
        now,
        patients,
    )
    return [TimerRow(**dict(r)) for r in rows]
