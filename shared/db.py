"""PostgreSQL plumbing: one pool per service bound to its own schema, and ordered
SQL migrations tracked in that schema's ``schema_migrations`` table.

Migrations are plain ``NNN_name.sql`` files beside each service. A small runner was
chosen over yoyo/alembic: both want a synchronous driver (psycopg/SQLAlchemy) beside
asyncpg, while this needs ~40 lines: an advisory lock, a checksum, one transaction
per file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from shared import pgpass
from shared.secrets import secret

log = logging.getLogger("ntx.db")

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


#: Plumbing tables (outbox, inbox, timers, dead letters), versions 1-99 in every schema.
PLUMBING_MIGRATIONS = Path(__file__).parent / "migrations"


def load_migrations(folder: Path) -> list[Migration]:
    """The plumbing migrations, then ``folder``'s (a service's own start at 100)."""
    found = []
    for path in sorted([*PLUMBING_MIGRATIONS.glob("*.sql"), *folder.glob("*.sql")]):
        version, _, name = path.stem.partition("_")
        found.append(Migration(int(version), name, path.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {folder}")
    return found


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def connect(url: str, schema: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    await _init_connection(conn)
    return conn


async def create_pool(
    url: str,
    schema: str,
    *,
    min_size: int = 1,
    max_size: int = 5,
    application: str = "ntx",
) -> asyncpg.Pool:
    """A pool whose connections see only ``schema`` by default, with JSON codecs,
    named ``application`` in ``pg_stat_activity``."""
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": application},
        init=_init_connection,
        reset=_keep_session,
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections are released as they were taken: the services hold only
    transaction-scoped locks and no cursors, listeners or session settings, so the
    default reset (a query per release) would only cost a round trip."""


async def migrate(url: str, schema: str, folder: Path, *, owner: str | None = None) -> list[int]:
    """Apply pending migrations of ``folder`` to ``schema``; returns versions applied.

    With ``owner`` (run by an administrator), the schema is created owned by that role
    and the migrations run as it, so the role owns its tables and nothing else."""
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    conn = await connect(url, schema)
    try:
        if owner is not None:
            await _ensure_owner(conn, schema, owner, pgpass.passfile_of(url))
        return await _migrate(conn, schema, load_migrations(folder))
    finally:
        await conn.close()


def service_role(service: str) -> str:
    return f"ntx_{service}"


async def _ensure_owner(
    conn: asyncpg.Connection, schema: str, role: str, passfile: Path | None
) -> None:
    """Least privilege: one login role per service, owning only its schema. Its
    password is ``NTX_SERVICE_DB_PASSWORD``, else the one kept for it in the admin
    URL's password file (generated there on first use)."""
    if not SCHEMA_NAME.match(role):
        raise ValueError(f"invalid role name {role!r}")
    password = _service_password()
    if not password and passfile is not None:
        password = pgpass.password_for(passfile, role)
    if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role):
        await conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
    if password:
        await conn.execute(f'ALTER ROLE "{role}" PASSWORD {_literal(password)}')
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
    if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
        await conn.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"')
    await conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{role}"')
    await conn.execute(f'SET ROLE "{role}"')


def _service_password() -> str | None:
    """``NTX_SERVICE_DB_PASSWORD``, from the environment or the secrets directory."""
    found = secret("NTX_SERVICE_DB_PASSWORD")
    return found.get_secret_value() if found else None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def role_url(admin_url: str, role: str) -> str:
    """The admin URL with the service role as user; its password is
    NTX_SERVICE_DB_PASSWORD, or comes from the URL's password file (``?passfile=``)."""
    parts = urlsplit(admin_url)
    password = _service_password()
    user = f"{role}:{quote(password)}" if password else role
    host = parts.hostname or ""
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def _migrate(conn: asyncpg.Connection, schema: str, migrations: list[Migration]) -> list[int]:
    lock_key = int(hashlib.sha256(f"ntx-migrate:{schema}".encode()).hexdigest()[:15], 16)
    await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
    try:
        if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        done = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise RuntimeError(
                        f"{schema} migration {m.version} changed after it was applied"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("migrated", extra={"schema": schema, "version": m.version})
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)


async def wait_for_database(url: str, *, attempts: int = 60, delay: float = 0.5) -> None:
    """Wait until PostgreSQL answers, for start-up ordering and database restarts."""
    for attempt in range(attempts):
        try:
            conn = await asyncpg.connect(url, timeout=5)
            await conn.close()
            return
        except (TimeoutError, OSError, asyncpg.PostgresError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(delay)


#: Errors that mean "the database is away for now": retry, never drop the message.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    # the pool or protocol in a state a lost connection left it in (seen on restarts)
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    # every SQLSTATE class 08 (connection) and 57 (operator intervention: shutdown,
    # restart) error: the server going or coming back, never the input
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
