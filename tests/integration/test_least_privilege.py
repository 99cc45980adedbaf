"""Each service's database role owns its own schema and can touch nothing else."""

from __future__ import annotations

import asyncpg
import pytest

from services.worker import load_spec
from shared import db

pytestmark = pytest.mark.infra


async def test_intake_role_cannot_read_the_alerts_schema(infra, unique):
    intake, alerts = f"intake_{unique}", f"alerts_{unique}"
    intake_role, alerts_role = f"ntx_intake_{unique}", f"ntx_alerts_{unique}"
    await db.migrate(infra.database_url, intake, load_spec("intake").migrations, owner=intake_role)
    await db.migrate(infra.database_url, alerts, load_spec("alerts").migrations, owner=alerts_role)

    as_intake = await db.connect(db.role_url(infra.database_url, intake_role), intake)
    try:
        assert await as_intake.fetchval("SELECT count(*) FROM decisions") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_intake.fetch(f"SELECT * FROM {alerts}.patient_state")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_intake.execute(f"CREATE TABLE {alerts}.intruder (x int)")
    finally:
        await as_intake.close()

    as_alerts = await db.connect(db.role_url(infra.database_url, alerts_role), alerts)
    try:
        assert await as_alerts.fetchval("SELECT count(*) FROM patient_state") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_alerts.fetch(f"SELECT * FROM {intake}.decisions")
    finally:
        await as_alerts.close()


async def test_audit_tables_are_append_only(infra, unique):
    schema = f"intake_{unique}"
    await db.migrate(infra.database_url, schema, load_spec("intake").migrations)
    conn = await db.connect(infra.database_url, schema)
    try:
        await conn.execute(
            "INSERT INTO decisions (patient_id, request_source, request_id, decided_at, as_of, trigger,"
            " ruleset_version, decision, reasons, advisories)"
            " VALUES ('p', 's', 'i', now(), '2026-01-01', 'request', 'v', 'accepted', '[]', '[]')"
        )
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE decisions SET decision = 'rejected'")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM decisions")
    finally:
        await conn.close()
