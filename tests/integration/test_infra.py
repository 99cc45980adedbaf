"""The embedded broker and database (shared/infra/, DESIGN.md §2): they come up, carry
messages and rows, and survive the faults the fault tests inject (§7)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.infra import EmbeddedStack, create_topics, free_port
from shared.topics import ALL_TOPICS


async def read_back(bootstrap: str, topic: str, n: int, timeout: float = 15.0) -> list:
    """The first ``n`` messages of ``topic`` across its partitions, without a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: list = []
        deadline = time.monotonic() + timeout
        while len(seen) < n and time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                seen.extend(msgs)
        return seen
    finally:
        await consumer.stop()


async def producer(bootstrap: str) -> AIOKafkaProducer:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    return p


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_stack_comes_up(infra) -> None:
    host, _, port = infra.bootstrap.rpartition(":")
    assert host and port.isdigit()
    assert infra.database_url.startswith("postgresql://")
    for part in (infra.broker, infra.postgres):
        if part is not None:
            assert part.running and part.pid and part.startup_seconds is not None


async def test_acks_all_producer_round_trip(infra, unique) -> None:
    topic = f"ntx.test.roundtrip.{unique}"
    assert await create_topics(infra.bootstrap, [topic], partitions=3) == [topic]
    p = await producer(infra.bootstrap)
    try:
        for i in range(5):
            await p.send_and_wait(topic, f"m{i}".encode(), key=f"k{i}".encode())
    finally:
        await p.stop()
    got = await read_back(infra.bootstrap, topic, 5)
    assert sorted(m.value for m in got) == [f"m{i}".encode() for i in range(5)]
    assert {m.key for m in got} == {f"k{i}".encode() for i in range(5)}


async def test_create_topics_is_idempotent_and_declares_all_topics(infra, unique) -> None:
    assert await create_topics(infra.bootstrap) == []  # the fixture made them already
    extra = f"ntx.test.idem.{unique}"
    assert await create_topics(infra.bootstrap, [extra]) == [extra]
    assert await create_topics(infra.bootstrap, [extra]) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == {t.name: t.partitions for t in ALL_TOPICS}


async def test_database_answers(infra) -> None:
    conn = await asyncpg.connect(infra.database_url)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_send_during_broker_pause_completes_after_resume(infra, unique) -> None:
    if infra.broker is None:
        pytest.skip("the broker is not embedded")
    topic = f"ntx.test.pause.{unique}"
    await create_topics(infra.bootstrap, [topic])
    p = await producer(infra.bootstrap)
    try:
        await p.send_and_wait(topic, b"before")  # metadata and connection in place
        infra.broker.pause()
        try:
            pending = asyncio.ensure_future(p.send_and_wait(topic, b"during"))
            await asyncio.sleep(1.5)
            assert not pending.done(), "a frozen broker acknowledged a send"
        finally:
            infra.broker.resume()
        meta = await asyncio.wait_for(pending, 20)
        assert meta.offset == 1
    finally:
        await p.stop()
    assert [m.value for m in await read_back(infra.bootstrap, topic, 2)] == [b"before", b"during"]


async def _write_marker(url: str, table: str, value: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE TABLE {table} (v text)")
        await conn.execute(f"INSERT INTO {table} VALUES ($1)", value)
    finally:
        await conn.close()


async def _read_marker(url: str, table: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["v"] for r in await conn.fetch(f"SELECT v FROM {table}")]
    finally:
        await conn.close()


async def test_postgres_restart_keeps_data_and_port(infra, unique) -> None:
    if infra.postgres is None:
        pytest.skip("the database is not embedded")
    table = f"restart_{unique}"
    await _write_marker(infra.database_url, table, "kept")
    held = await asyncpg.connect(infra.database_url)  # cut off by the restart
    old_pid, url = infra.postgres.pid, infra.database_url
    await asyncio.to_thread(infra.postgres.restart)
    assert infra.postgres.pid != old_pid and infra.database_url == url
    with pytest.raises((asyncpg.PostgresError, OSError, asyncpg.InterfaceError)):
        await held.fetchval("select 1")
    held.terminate()
    assert await _read_marker(infra.database_url, table) == ["kept"]


async def test_postgres_kill_loses_no_committed_row(infra, unique) -> None:
    if infra.postgres is None:
        pytest.skip("the database is not embedded")
    table = f"killed_{unique}"
    await _write_marker(infra.database_url, table, "committed")
    infra.postgres.kill()
    assert not infra.postgres.running and infra.postgres.pid is None
    with pytest.raises(OSError):
        await asyncpg.connect(infra.database_url, timeout=2)
    await asyncio.to_thread(infra.postgres.restart)
    assert await _read_marker(infra.database_url, table) == ["committed"]


def test_configured_endpoints_start_nothing(tmp_path: Path) -> None:
    env = {"NTX_KAFKA_BOOTSTRAP": "kafka:9092", "NTX_DATABASE_URL": "postgresql://u@db/ntx"}
    with EmbeddedStack(tmp_path, env=env) as stack:
        assert stack.broker is None and stack.postgres is None
        assert (stack.bootstrap, stack.database_url) == ("kafka:9092", "postgresql://u@db/ntx")
    assert not any(tmp_path.iterdir())


_PARENT = textwrap.dedent(
    """
    import json, sys, threading, time
    from shared.infra import EmbeddedStack
    stack = EmbeddedStack(sys.argv[1]).start()
    # a restart from a short-lived thread must neither die with that thread nor outlive us
    worker = threading.Thread(target=stack.postgres.restart)
    worker.start()
    worker.join()
    time.sleep(0.3)
    print(json.dumps([stack.broker.pid, stack.postgres.pid]), flush=True)
    time.sleep(120)
    """
)


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


@pytest.mark.infra
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="parent-death signal is Linux only"
)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_children_do_not_outlive_a_killed_parent(sig: int) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("NTX_KAFKA_BOOTSTRAP", "NTX_DATABASE_URL")
    }
    run_dir = tempfile.mkdtemp(prefix="ntx-test-orphans-")  # see conftest: not basetemp
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, run_dir],
        stdout=subprocess.PIPE,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        assert pids and not any(_gone(pid) for pid in pids)
        parent.send_signal(sig)
        parent.wait(30)
        deadline = time.monotonic() + 30
        while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(pid) for pid in pids), f"orphans left: {pids}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        shutil.rmtree(run_dir, ignore_errors=True)


def test_a_service_whose_port_is_taken_starts_again_on_another(infra, unique, tmp_path):
    """A free port can be taken between choosing it and binding it: the service that
    exits for it is started again elsewhere, not reported as a failed start."""
    from services.runner import ServiceProcesses, service_env

    env = service_env(infra.bootstrap, infra.database_url, {"NTX_SCHEMA_PREFIX": f"p{unique}_"})
    procs = ServiceProcesses(env, tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        procs.ports["intake"] = port
        procs.start("intake")
        try:
            assert procs.wait_healthy(timeout=120)
            assert procs.ports["intake"] != port
        finally:
            procs.stop_all()
