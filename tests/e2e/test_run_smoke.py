"""``ntx run`` brings up broker, database and every service as its own process,
healthy, and Ctrl-C (SIGINT) stops them all cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from services.bootstrap import SERVICES
from tests.e2e.running import READY, lines_until

pytestmark = pytest.mark.infra


def test_ntx_run_starts_healthy_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = lines_until(proc, READY, timeout=120)
        assert "ntx: services ready" in lines
        # one line names the broker: Apache Kafka where a JDK is found, else Tansu
        assert len([line for line in lines if line.startswith("ntx: broker ")]) == 1, lines
        urls = [w for line in lines for w in line.split() if w.endswith("/health")]
        assert len(urls) == len(SERVICES)
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
    for name in SERVICES:
        log = (tmp_path / f"{name}.log").read_text()
        assert "service started" in log and "service stopped" in log
