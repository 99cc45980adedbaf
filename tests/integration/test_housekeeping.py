"""Housekeeping keeps the plumbing tables bounded: published outbox rows, old inbox
entries and long-emitted due items go; unsent rows, recent entries and pending items
stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scheduler.horizon import EMITTED_KEPT_FOR, prune_emitted
from services.scheduler.service import SPEC
from shared import db, housekeeping
from shared.clock import SimulatedClock
from shared.runtime import Runtime
from tests.integration.harness import settings_for

pytestmark = pytest.mark.infra

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def test_prune_keeps_what_is_still_needed(infra, unique):
    schema = f"house_{unique}"
    await db.migrate(infra.database_url, schema, SPEC.migrations)
    conn = await db.connect(infra.database_url, schema)
    try:
        await conn.execute(
            "INSERT INTO outbox (topic, key, value, sent_at) VALUES"
            " ('t', 'p', 'old', now() - interval '2 days'), ('t', 'p', 'recent', now()),"
            " ('t', 'p', 'unsent', NULL)"
        )
        await conn.execute(
            "INSERT INTO inbox (source, id, digest, handled_at) VALUES"
            " ('s', 'old', 'd', now() - interval '40 days'), ('s', 'new', 'd', now())"
        )
        settings = settings_for(infra)
        assert await housekeeping.prune(conn, settings) == {"outbox": 1, "inbox": 1}
        kept = await conn.fetchval(
            "SELECT array_agg(convert_from(value, 'UTF8') ORDER BY id) FROM outbox"
        )
        assert kept == ["recent", "unsent"]
        assert await conn.fetchval("SELECT array_agg(id) FROM inbox") == ["new"]

        old, recent = NOW - EMITTED_KEPT_FOR - timedelta(hours=1), NOW - timedelta(days=1)
        await conn.executemany(
            "INSERT INTO due_items (patient_id, key, type, due_at, data, emitted_at)"
            " VALUES ('p', $1, 'ntx.uds.due.v1', $2, '{}', $3)",
            [("old", old, old), ("recent", recent, recent), ("pending", NOW, None)],
        )
        runtime = Runtime(SPEC, settings, SimulatedClock(NOW), schema=schema)
        runtime.pool = await db.create_pool(infra.database_url, schema)
        try:
            assert (
                await prune_emitted(runtime) == 0
            )  # all pruned in one go: no work left for the loop
        finally:
            await runtime.pool.close()
        keys = await conn.fetchval("SELECT array_agg(key ORDER BY key) FROM due_items")
        assert keys == ["pending", "recent"]
    finally:
        await conn.close()
