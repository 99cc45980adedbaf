"""``ntx run`` brings up broker, database and three service processes, healthy, and
Ctrl-C (SIGINT) stops them all cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.infra


def _lines_until(proc: subprocess.Popen, marker: str, timeout: float) -> list[str]:
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


def test_ntx_run_starts_healthy_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = _lines_until(proc, "Ctrl-C stops everything", timeout=120)
        assert "ntx: services ready" in lines
        urls = [w for line in lines for w in line.split() if w.endswith("/health")]
        assert len(urls) == 3
        for url in urls:
            with urllib.request.urlopen(url, timeout=5) as r:
                assert json.loads(r.read())["ok"] is True
            with urllib.request.urlopen(url.replace("/health", "/metrics"), timeout=5) as r:
                assert b"ntx_messages_consumed_total" in r.read()
        assert (tmp_path / "endpoints.json").exists()
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert f"Database files and service logs are in {tmp_path}" in rest
    assert not (tmp_path / "endpoints.json").exists()
    for name in ("intake", "scheduler", "alerts"):
        log = (tmp_path / f"{name}.log").read_text()
        assert "service started" in log and "service stopped" in log
