"""``ntx run`` as a user starts it, for the end-to-end tests: its output read line by
line, the broker it names, and Ctrl-C at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

READY = "Ctrl-C stops everything"


def lines_until(proc: subprocess.Popen, marker: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} not seen in time; output so far: {lines}")


def exported(lines: list[str], name: str) -> str:
    """The value ``ntx run`` prints as ``export NAME=value``."""
    prefix = f"export {name}="
    return next(line.split("=", 1)[1] for line in lines if line.strip().startswith(prefix))


@contextlib.contextmanager
def ntx_run(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """``ntx run`` until it is ready; yields its output so far; Ctrl-C on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        yield lines_until(proc, READY, timeout=180)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def send_example(data_dir: Path, example: str) -> subprocess.CompletedProcess:
    """``ntx send --now`` of an example file, as the README's quick start does."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "send", "--now", example],
        env={**os.environ, "NTX_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
