"""Child processes of the embedded infrastructure: started with a log file, stopped
with a signal then SIGKILL, and never outliving their parent: stop() on exit, an
``atexit`` sweep, and on Linux a parent-death signal (``PR_SET_PDEATHSIG``) that
reaches the children even when the parent is killed with SIGKILL."""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Self

log = logging.getLogger("ntx.infra")

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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

_LIVE: set[Child] = set()
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


class Child:
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


def wait_tcp(host: str, port: int, deadline: float, child: Child, log_path: Path) -> None:
    while True:
        check_alive(child, log_path)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name}: nothing listens on {host}:{port}") from None
            time.sleep(0.02)


def check_alive(child: Child, log_path: Path) -> None:
    if child.proc is not None and child.proc.poll() is not None:
        raise RuntimeError(
            f"{child.name} exited with code {child.proc.returncode}; "
            f"last log lines:\n{tail(log_path)}"
        )


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class RunsAsChild:
    """Something that runs as one child process (``_child``): its pid while it runs."""

    _child: Child

    @property
    def pid(self) -> int | None:
        return self._child.proc.pid if self._child.running and self._child.proc else None

    @property
    def running(self) -> bool:
        return self._child.running


class Embedded(RunsAsChild):
    """What the embedded broker and database share: one child process, started by
    ``start()`` and stopped by ``stop()``, and a context manager doing both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def devstack_missing(what: str) -> RuntimeError:
    """The error for a development-stack part the install lacks (the image has none)."""
    return RuntimeError(
        f"{what} is part of the development stack, which is not installed:"
        " `make install` (or pip install 'ntx[devstack]') adds it; in production set"
        " NTX_DATABASE_URL and NTX_KAFKA_BOOTSTRAP instead"
    )
