"""One service as the process operators run (``ntx service intake``): its HTTP surface
is on loopback and is only /livez, /readyz, /health and /metrics; while the database
is away it reports no progress; SIGTERM stops it even then, and what it held is
handled once the database is back (issue 18)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from shared.topics import INTAKE_DECISIONS, INTAKE_REQUESTS
from tests.hostile import valid
from tests.integration.harness import patient_messages, produce
from tests.integration.service_process import ServiceProcess

pytestmark = pytest.mark.infra


@pytest.fixture
def service(infra, tmp_path, unique):
    svc = ServiceProcess(
        "intake", infra, f"w{unique}_", tmp_path / "intake.log", NTX_STALL_AFTER_S="2"
    )
    svc.start()
    yield svc
    svc.kill()


def listening_addresses(port: int) -> set[str]:
    """Local addresses a TCP socket listens on at ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_only_the_operator_endpoints_are_served_and_on_loopback(service):
    service.wait_for("/readyz", 200)
    assert listening_addresses(service.port) == {"0100007F"}  # 127.0.0.1, nothing else
    for path in ("/livez", "/readyz", "/health", "/metrics"):
        assert service.call(path)[0] == 200, path
    for path in ("/", "/router/x/", "/router/", "/table/", "/graph/", "/stats/", "/signal/"):
        assert service.call(path)[0] == 404, path
    assert service.call("/readyz")[1]["partitions"] > 0
    assert "Traceback" not in service.log.read_text()


def test_sigterm_is_honoured_while_the_database_is_away_and_nothing_is_lost(infra, service, unique):
    if infra.postgres is None:
        pytest.skip("needs the embedded database to stop it (external database configured)")
    service.wait_for("/readyz", 200)
    patient = f"sigterm-{unique}"
    request = valid("ntx.intake.requested.v1", patient, 1)
    infra.postgres.stop()
    try:
        asyncio.run(
            produce(
                infra.bootstrap,
                INTAKE_REQUESTS.name,
                patient.encode(),
                json.dumps(request).encode(),
            )
        )
        stalled = service.wait_for("/readyz", 503, timeout=60)
        assert stalled["ok"] is False
        # alive all the same: a liveness probe must not restart it for a database outage
        assert service.call("/livez")[0] == 200
        deadline = time.monotonic() + 60
        while "a batch in hand" not in " ".join(service.call("/health")[1]["stalled"]):
            assert time.monotonic() < deadline, service.call("/health")
            time.sleep(0.5)
        began = time.monotonic()
        assert service.proc is not None
        service.proc.send_signal(signal.SIGTERM)
        code = service.proc.wait(timeout=30)
        assert time.monotonic() - began < 15
    finally:
        infra.postgres.start()
    assert code == 75  # stopped as a crash would: nothing acknowledged unhandled
    assert "unacknowledged input will be redelivered" in service.log.read_text()
    service.start()  # the same worker again: the request is redelivered and decided
    decided = asyncio.run(patient_messages(infra.bootstrap, INTAKE_DECISIONS.name, patient, 1, 120))
    assert len(decided) == 1
