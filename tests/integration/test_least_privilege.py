"""Each service's database role owns its own schema and can touch nothing else."""

from __future__ import annotations

import asyncio
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import asyncpg
import pytest

from services.bootstrap import load_spec
from shared import db, pgpass

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


async def test_the_embedded_database_wants_a_password_kept_in_a_0600_file(infra, unique):
    if infra.postgres is None:
        pytest.skip("the database is not embedded (configured elsewhere)")
    passfile = infra.postgres.passfile
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    bare = infra.database_url.split("?")[0]  # the same URL without its password file
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(bare, password="guess", timeout=10)
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.ClientConfigurationError)):
        await asyncpg.connect(bare, passfile=str(passfile) + ".none", timeout=10)
    role = f"ntx_intake_{unique}"
    await db.migrate(
        infra.database_url, f"intake_{unique}", load_spec("intake").migrations, owner=role
    )
    assert role in pgpass.read(passfile)
    assert "trust" not in (infra.postgres.datadir / "pg_hba.conf").read_text().split("\n", 1)[1]
    conn = await asyncpg.connect(db.role_url(infra.database_url, role), timeout=10)
    try:
        assert (
            await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            is False
        )
    finally:
        await conn.close()


@pytest.mark.infra
def test_a_data_directory_made_with_trust_is_given_passwords():
    """An older NTX made var/pg with trust authentication: its next start sets a
    superuser password (kept in var/pgpass) and allows nothing without one."""
    from shared.infra.postgres import EmbeddedPostgres, pg_bin

    tmp_path = Path(tempfile.mkdtemp(prefix="ntx-test-trust-"))  # see conftest: not basetemp

    old = EmbeddedPostgres(tmp_path)
    old.datadir = (tmp_path / "pg").resolve()
    old.datadir.mkdir()
    old._prepare_user()
    argv = [str(pg_bin() / "initdb"), "-D", str(old.datadir), "--auth=trust", "-U", "postgres"]
    subprocess.run(argv, check=True, capture_output=True, user=old._user_name(), env=old._env())
    with EmbeddedPostgres(tmp_path) as pg:

        async def probe() -> None:
            conn = await asyncpg.connect(pg.url, timeout=10)
            await conn.close()
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(pg.url.split("?")[0], password="x", timeout=10)

        asyncio.run(probe())
    assert "postgres" in pgpass.read(tmp_path / "pgpass")
    shutil.rmtree(tmp_path, ignore_errors=True)
