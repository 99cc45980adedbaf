"""``ntx run`` under attack (issue 18), as the attacker tried it: least privilege in
``pg_stat_activity``, HTTP on loopback only, a hostile run of about 224 bad messages
interleaved with 200 valid requests, and kill -9 of each service during a
5,000-request send. One ``ntx run`` serves the whole module."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from services.bootstrap import SERVICES, load_spec
from services.tools import read_events, rebase
from services.topic_reading import read_all
from shared.topics import (
    DLQ,
    INTAKE_DECISIONS,
    INTAKE_REQUESTS,
    NOTIFICATIONS,
    SCHEDULE,
    event_type,
)
from tests.hostile import CONSUMED, INBOUND, applies, fixed_mutations, hostile, valid

pytestmark = pytest.mark.infra

EXAMPLE = Path(__file__).parents[2] / "examples" / "events" / "intake_request.json"
ROLES = {f"ntx_{name}" for name in SERVICES}


class NtxRun:
    """``ntx run`` in a child process; its output collected line by line."""

    def __init__(self, data_dir: Path):
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("NTX_KAFKA_BOOTSTRAP", "NTX_DATABASE_URL")
        }
        env["NTX_STALL_AFTER_S"] = "10"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("Ctrl-C stops everything", 180)
        assert "ntx: services ready" in self.lines, self.lines
        exports = dict(re.findall(r"export (\w+)=(\S+)", "\n".join(self.lines)))
        self.bootstrap = exports["NTX_KAFKA_BOOTSTRAP"]
        self.database_url = exports["NTX_DATABASE_URL"]
        self.health = {
            line.split()[0]: line.split()[1]
            for line in self.lines
            if line.endswith(".log") and "/health" in line
        }

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(marker in line for line in self.lines):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.lines
            time.sleep(0.2)

    def service_pid(self, name: str) -> int:
        """The pid of ``ntx service NAME`` that this run started (a child of it)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(stat[1]) == self.proc.pid and argv[-3:-1] == [b"service", name.encode()]:
                return int(entry.name)
        raise AssertionError(f"no running {name} under ntx run")

    def get(self, name: str, path: str) -> tuple[int, bytes]:
        url = self.health[name].replace("/health", path)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for name in SERVICES:
            while True:
                try:
                    status, body = self.get(name, "/readyz")
                except OSError:
                    status, body = 0, b""
                if status == 200:
                    break
                assert time.monotonic() < deadline, (name, status, body, self.lines[-20:])
                time.sleep(0.5)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(90)


@pytest.fixture(scope="module")
def ntx(tmp_path_factory):
    running = NtxRun(tmp_path_factory.mktemp("ntx-run"))
    try:
        yield running
    finally:
        code = running.stop() if running.proc.poll() is None else running.proc.returncode
        print("\n".join(running.lines))
    assert code == 0


def test_no_service_runs_as_a_superuser(ntx):
    async def activity() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(ntx.database_url)
        try:
            return await conn.fetch(
                "SELECT a.usename, a.application_name, r.rolsuper FROM pg_stat_activity a"
                " JOIN pg_roles r ON r.rolname = a.usename"
                " WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()

    rows = asyncio.run(activity())
    assert {r["usename"] for r in rows} == ROLES  # every service, and nothing else
    assert not any(r["rolsuper"] for r in rows)
    assert {(r["application_name"], r["usename"]) for r in rows} == {
        (f"ntx-{name}", f"ntx_{name}") for name in SERVICES
    }
    passfile = Path(ntx.database_url.split("passfile=")[1])
    assert oct(passfile.stat().st_mode & 0o777) == "0o600"
    assert not any(password in "\n".join(ntx.lines) for password in _passwords(passfile))


def _events(records) -> list[dict]:
    """The events among ``records``: the hostile run forges tombstones and bad
    events on the topics NTX publishes too."""
    found = []
    for record in records:
        try:
            event = json.loads(record.value)
        except (TypeError, ValueError):
            continue
        if isinstance(event, dict) and isinstance(event.get("subject"), str):
            found.append(event)
    return found


def _passwords(passfile: Path) -> list[str]:
    return [line.rsplit(":", 1)[1] for line in passfile.read_text().splitlines()]


def test_http_is_on_loopback_and_only_the_operator_endpoints(ntx):
    for name, url in ntx.health.items():
        assert url.startswith("http://127.0.0.1:")
        port = int(url.split(":")[2].split("/")[0])
        assert _listening(port) == {"0100007F"}, name
        for path in ("/livez", "/readyz", "/health", "/metrics"):
            assert ntx.get(name, path)[0] == 200, (name, path)
        for path in ("/", "/router/x/", "/table/", "/graph/"):
            assert ntx.get(name, path)[0] == 404, (name, path)


def _listening(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                found.add(local.split(":")[0])
    return found


def accepted_request(patient: str, now: datetime) -> dict:
    """The example request moved to now: accepted whenever it is sent."""
    (message,) = rebase(read_events(str(EXAMPLE)), now)
    message["subject"] = message["data"]["patient_id"] = patient
    return message


def hostile_messages(now: datetime) -> list[tuple[str, bytes | None, bytes | None]]:
    """Every kind of bad message on the health system's topics; on the topics NTX
    publishes (a forged decision or schedule item), a tombstone, a NUL id, times from
    the future and before year 1, and every body fault of the types a service acts on; and the issue's 800 KB and 5 MB requests."""
    specs = [load_spec(name) for name in SERVICES]
    acted = {  # a body is judged only by a service that acts on its type
        t
        for t in CONSUMED
        for spec in specs
        if event_type(t).topic in spec.topics and (spec.handles is None or t in spec.handles)
    }
    out = []
    for type_ in CONSUMED:
        if type_ in INBOUND:
            mutations = fixed_mutations(type_)
        else:
            body = [("implausible_date",), ("huge_number",), ("unknown_field", "abc")]
            forged = [("tombstone",), ("nul_id",), ("future_time",), ("year_one_time",)]
            mutations = forged + [m for m in body if applies(type_, m) and type_ in acted]
        for mutation in mutations:
            key, value = hostile(type_, f"hx-{len(out)}", 1, mutation, now)
            out.append((event_type(type_).topic.name, key, value))
    for size in (800_000, 5_000_000):
        request = valid("ntx.intake.requested.v1", f"hx-{len(out)}", 1, now)
        request["data"]["padding"] = "x" * size
        out.append(
            (INTAKE_REQUESTS.name, request["subject"].encode(), json.dumps(request).encode())
        )
    return out


async def _send(bootstrap: str, messages: list[tuple[str, bytes | None, bytes | None]]) -> list:
    """Each message's record metadata, or the error the broker answered it with."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=8 * 1024 * 1024
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        return list(await asyncio.gather(*sent, return_exceptions=True))
    finally:
        await producer.stop()


def test_a_hostile_run_leaves_every_valid_request_decided_once(ntx):
    now = datetime.now(UTC)
    bad = hostile_messages(now)
    good = {f"ok-{n}": accepted_request(f"ok-{n}", now) for n in range(200)}
    # and one valid notification request, so the notifier has valid input too
    notify = valid("ntx.notification.requested.v1", "ok-notify", 0, now)
    traffic = [(m, True) for m in bad] + [
        ((INTAKE_REQUESTS.name, p.encode(), json.dumps(r).encode()), False) for p, r in good.items()
    ]
    traffic.append(((NOTIFICATIONS.name, b"ok-notify", json.dumps(notify).encode()), False))
    random.Random(18).shuffle(traffic)
    print(f"{len(bad)} hostile messages among {len(good)} valid requests")
    assert len(bad) >= 220
    meta = asyncio.run(_send(ntx.bootstrap, [m for m, _ in traffic]))
    refused = [(m, r) for r, (m, _) in zip(meta, traffic, strict=True) if isinstance(r, Exception)]
    # Apache Kafka's own limit (message.max.bytes, about 1 MiB) refuses the 5 MB request
    # before any service sees it; nothing else may be refused
    assert all(
        isinstance(r, MessageSizeTooLargeError) and len(m[2] or b"") > 1_000_000 for m, r in refused
    ), refused
    hostile_at = {
        (r.topic, r.partition, r.offset)
        for r, (_, is_bad) in zip(meta, traffic, strict=True)
        if is_bad and not isinstance(r, Exception)
    }

    async def letters() -> dict[tuple, list[dict]]:
        found = defaultdict(list)
        for record in await read_all(ntx.bootstrap, [DLQ.name]):
            letter = json.loads(record.value)
            found[(letter["topic"], letter["partition"], letter["offset"])].append(letter)
        return found

    async def decisions() -> list[dict]:  # intake's, not the forged ones sent above
        events = _events(await read_all(ntx.bootstrap, [INTAKE_DECISIONS.name]))
        return [e for e in events if e.get("source") == "ntx/intake"]

    deadline = time.monotonic() + 240
    while True:
        decided = {d["subject"] for d in asyncio.run(decisions())}
        lettered = set(asyncio.run(letters()))
        if set(good) <= decided and hostile_at <= lettered:
            break
        assert time.monotonic() < deadline, (len(set(good) & decided), len(hostile_at - lettered))
        time.sleep(1)
    time.sleep(2)  # anything published twice would be here by now
    mine = Counter(
        d["subject"] for d in asyncio.run(decisions()) if d["subject"].startswith(("ok-", "hx-"))
    )
    assert mine == Counter(dict.fromkeys(good, 1)), "each valid request decided exactly once"
    by_message = asyncio.run(letters())
    unnamed = [k for k in hostile_at if not all(letter["field"] for letter in by_message[k])]
    assert not unnamed, unnamed
    plans = Counter(
        e["subject"]
        for e in _events(asyncio.run(read_all(ntx.bootstrap, [SCHEDULE.name])))
        if e["type"] == "ntx.plan.created.v1" and e.get("source") == "ntx/scheduler"
    )
    assert {p: plans[p] for p in good} == dict.fromkeys(good, 1)  # the scheduler went on
    ntx.wait_ready()  # every service: database, partitions, no batch held, no input waiting
    for name in (n for n in SERVICES if load_spec(n).topics):  # the gateway reads HTTP
        metrics = ntx.get(name, "/metrics")[1].decode()
        assert re.search(rf'outcome="dead",service="{name}"}} [1-9]', metrics), name
        assert re.search(rf'outcome="handled",service="{name}"}} [1-9]', metrics), name


def test_kill_9_each_service_during_a_5000_request_send_loses_and_repeats_nothing(ntx):
    now = datetime.now(UTC)
    patients = [f"k-{n}" for n in range(5000)]
    requests = [
        (
            INTAKE_REQUESTS.name,
            p.encode(),
            json.dumps(accepted_request(p, now)).encode(),
        )
        for p in patients
    ]
    killed = []
    size = len(requests) // (len(SERVICES) + 1)  # a kill after each chunk but the last
    for chunk, victim in enumerate([*SERVICES, None]):
        end = (chunk + 1) * size if victim is not None else None  # the last takes the rest
        asyncio.run(_send(ntx.bootstrap, requests[chunk * size : end]))
        if victim is not None:
            os.kill(ntx.service_pid(victim), signal.SIGKILL)
            killed.append(victim)
    assert killed == list(SERVICES)

    async def decisions() -> list[tuple[str, str]]:
        records = await read_all(ntx.bootstrap, [INTAKE_DECISIONS.name])
        return [
            (e["subject"], e["id"]) for e in _events(records) if e.get("source") == "ntx/intake"
        ]

    wanted = set(patients)
    deadline = time.monotonic() + 300
    while not wanted <= {s for s, _ in asyncio.run(decisions())}:
        assert time.monotonic() < deadline, "not every request was decided"
        time.sleep(2)
    for name in SERVICES:
        ntx.wait_for(f"ntx: {name} exited with code -9", 10)
        ntx.wait_for(f"ntx: {name} restarted", 60)
    ntx.wait_ready()
    time.sleep(2)
    seen = [(s, i) for s, i in asyncio.run(decisions()) if s in wanted]
    ids = defaultdict(set)
    for subject, id_ in seen:
        ids[subject].add(id_)
    assert all(len(v) == 1 for v in ids.values()), "a request decided twice"
    copies = len(seen) - len(set(seen))
    print(f"5000 requests, 5000 decisions; {copies} re-sent copies on the wire")
    # A kill between the broker's ack and the outbox stamp re-sends the same event, same
    # id (delivery is at-least-once, README "Delivery"); the next service must drop it:
    # the scheduler makes one plan for each accepted request, never two. (Its own plan
    # may reach the wire twice too, the scheduler being killed as well: same id.)
    accepted = {
        e["subject"]
        for e in _events(asyncio.run(read_all(ntx.bootstrap, [INTAKE_DECISIONS.name])))
        if e["type"] == "ntx.intake.accepted.v1" and e["subject"] in wanted
    }

    def plans() -> Counter:
        events = _events(asyncio.run(read_all(ntx.bootstrap, [SCHEDULE.name])))
        made = {
            (e["subject"], e["id"])
            for e in events
            if e["type"] == "ntx.plan.created.v1" and e["subject"] in accepted
        }
        return Counter(subject for subject, _ in made)

    while set(plans()) != accepted:
        assert time.monotonic() < deadline + 120, "not every accepted request got a plan"
        time.sleep(2)
    assert accepted and set(plans().values()) == {1}, "a plan made twice"
