"""Per-patient transaction locks (PostgreSQL advisory locks), the one mutex every path
that changes a patient's state takes first: message batches block on them in a fixed
order, timer batches only try them. So two workers, two agents and the timer loop
never deadlock on each other's rows, and a patient's changes apply one at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import asyncpg


def lock_key(scope: str, patient_id: str) -> int:
    """A signed 64-bit key for ``patient_id`` within ``scope`` (the service schema)."""
    digest = hashlib.blake2b(f"{scope}:{patient_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_patients(conn: asyncpg.Connection, scope: str, patients: Iterable[str]) -> None:
    """Wait for every patient's lock, in ascending key order (no lock cycles)."""
    keys = sorted({lock_key(scope, p) for p in patients})
    if keys:
        await conn.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) k", keys
        )


async def try_lock_patients(
    conn: asyncpg.Connection, scope: str, patients: Iterable[str]
) -> set[str]:
    """Take the locks that are free now; returns the patients whose lock is held."""
    by_key: dict[int, list[str]] = {}
    for p in set(patients):
        by_key.setdefault(lock_key(scope, p), []).append(p)
    if not by_key:
        return set()
    rows = await conn.fetch(
        "SELECT k FROM unnest($1::bigint[]) k WHERE pg_try_advisory_xact_lock(k)",
        sorted(by_key),
    )
    return {p for r in rows for p in by_key[r["k"]]}
