"""kill -9 the scheduler worker mid-emission and restart it: every due item is emitted,
each under exactly one event id (DESIGN.md §4.2 "a restart loses no due event and
emits none twice"; §5 "a SIGKILL at any point loses nothing").

Black box: ``ntx service scheduler`` runs as a separate OS process on its own schema
(``NTX_SCHEMA_PREFIX``) and a simulated clock file. Several hundred accepted decisions
give plans; the clock then jumps so that well over a thousand doses fall due at once,
and the process is killed while ``due_items`` shows some emitted and some not. After a
restart every due row must be emitted and appear on ``ntx.schedule.v1``. Repeats of one
event id are allowed (at-least-once relay; consumers dedupe by source+id); two ids for
one item, a missing item or an item that is not due are failures.

Only observable behaviour is used: the ``plans``, ``due_items`` and ``outbox`` tables,
the topic, and the process interface (environment, ``/health``, signals).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import db
from shared.clock import FileClock
from shared.localtime import local_midnight_utc
from shared.topics import INTAKE_DECISIONS, SCHEDULE
from tests.integration.builders import accepted, plan
from tests.integration.harness import publish
from tests.integration.service_process import ServiceProcess

pytestmark = pytest.mark.infra

ZONE = "America/New_York"
START = date(2026, 3, 2)
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 07:00 New York, before the first 09:00 dose
#: Just inside the 48 h horizon materialised with each plan: the doses of 2 and 3 March
#: (09:00 local) are due at once, two per patient.
JUMP = T0 + timedelta(hours=47)
#: Patients per attempt; a later attempt (fresh schema, more load) only runs when the
#: kill landed after the emission had finished.
LOADS = (800, 2400)
MIN_DUE = 1000


async def wait_for(check, what: str, timeout: float, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval)
    return result


async def read_schedule(bootstrap: str, prefix: str) -> list[dict]:
    """Every message on the schedule topic keyed by one of this test's patients."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(SCHEDULE.name, p) for p in range(SCHEDULE.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[dict] = []
        while [p for p in parts if await consumer.position(p) < ends[p]]:
            for msgs in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                out.extend(
                    json.loads(m.value)
                    for m in msgs
                    if m.key is not None and m.key.decode().startswith(prefix)
                )
        return out
    finally:
        await consumer.stop()


def due_instant(event: dict) -> datetime:
    """When the item an event announces was due: ``due_utc``, or local midnight of a
    date-only ``due_local``."""
    data = event["data"]
    if data.get("due_utc"):
        return datetime.fromisoformat(data["due_utc"].replace("Z", "+00:00"))
    return local_midnight_utc(date.fromisoformat(data["due_local"]), ZONE)


async def run_attempt(infra, tmp_path: Path, tag: str, n_patients: int) -> dict:  # type: ignore[no-untyped-def]
    """One load: plans, jump, kill -9 mid-emission, restart, settle. Returns what was
    seen; ``landed`` says whether the kill found the emission partly done."""
    prefix = f"k{tag}_"
    schema = f"{prefix}scheduler"
    key_prefix = f"kill-{tag}-"
    patients = [f"{key_prefix}{i:05d}" for i in range(n_patients)]
    clock = FileClock(tmp_path / f"clock-{tag}")
    clock.set(T0)
    proc = ServiceProcess(
        "scheduler",
        infra,
        prefix,
        tmp_path / f"scheduler-{tag}.log",
        clock=clock,
        NTX_BROKER_COMMIT_INTERVAL_S="0.1",
        NTX_TIMER_POLL_S="0.02",
        NTX_RELAY_POLL_S="0.02",
        # smaller emission transactions: more of them to land a kill between
        NTX_TIMER_BATCH="100",
    )
    conn = None
    try:
        proc.start()
        await proc.wait_healthy()
        conn = await db.connect(infra.database_url, schema)
        decisions = [accepted(plan(p, START), T0) for p in patients]
        await publish(infra.bootstrap, INTAKE_DECISIONS.name, decisions)

        # The worker's new consumer group also reads the decisions earlier tests left
        # on the topic: every count is of this test's patients (key prefix).
        mine = "patient_id LIKE $1"
        like = f"{key_prefix}%"

        async def plans_ready() -> bool:
            plans = await conn.fetchval(f"SELECT count(*) FROM plans WHERE {mine}", like)
            unsent = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            return plans == n_patients and unsent == 0

        await wait_for(plans_ready, f"{n_patients} plans", timeout=60)
        due_sql = f"SELECT count(*) FROM due_items WHERE {mine} AND due_at <= $2"
        emitted_sql = due_sql + " AND emitted_at IS NOT NULL"
        assert await conn.fetchval(emitted_sql, like, JUMP) == 0
        total = await conn.fetchval(due_sql, like, JUMP)
        assert total >= MIN_DUE, f"only {total} items fall due at the jump"

        clock.set(JUMP)
        # Poll until a quarter is emitted, then wait a random part of the estimated
        # remaining time, so the kill lands at any point of an emission cycle (not
        # always just after the commit the poll saw).
        seen, first, began = 0, 0, 0.0
        deadline = time.monotonic() + 60
        while seen < total // 4 and time.monotonic() < deadline:
            seen = await conn.fetchval(emitted_sql, like, JUMP)
            if seen and not first:
                first, began = seen, time.monotonic()
        rate = (seen - first) / (time.monotonic() - began) if seen > first else 0.0
        delay = random.uniform(0, (total - seen) / rate / 2) if rate else 0.0
        await asyncio.sleep(delay)
        proc.kill()  # some emitted, or (too fast) all
        await asyncio.sleep(0.5)  # the killed connection's open transaction rolls back
        at_kill = await conn.fetchval(emitted_sql, like, JUMP)
        landed = 0 < at_kill < total
        unsent_at_kill = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")

        proc.start()

        async def all_emitted() -> bool:
            assert proc.running(), proc.died()
            pending = await conn.fetchval(
                "SELECT count(*) FROM due_items WHERE due_at <= $1 AND emitted_at IS NULL",
                clock.now(),
            )
            unsent = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            return pending == 0 and unsent == 0

        await wait_for(all_emitted, "every due item emitted after the restart", timeout=60)
        rows = await conn.fetch(
            f"SELECT patient_id, key, type, due_at, emitted_at FROM due_items WHERE {mine}"
            " AND due_at <= $2",
            like,
            clock.now(),
        )
        events = await read_schedule(infra.bootstrap, key_prefix)
    finally:
        proc.kill()
        if conn is not None:
            await conn.close()
    return {
        "schema": schema,
        "total": total,
        "at_kill": at_kill,
        "unsent_at_kill": unsent_at_kill,
        "landed": landed,
        "delay": delay,
        "rows": rows,
        "events": events,
    }


async def test_kill_9_mid_emission_then_restart_emits_every_due_item_once(infra, unique, tmp_path):
    attempts = []
    for n, load in enumerate(LOADS):
        result = await run_attempt(infra, tmp_path, f"{unique}{n}", load)
        attempts.append((load, result["total"], result["at_kill"]))
        if result["landed"]:
            break
    assert result["landed"], (
        f"the kill never landed mid-emission (patients, due, emitted at kill): {attempts}"
    )
    print(
        f"\nkill -9 {result['delay']:.3f} s after a quarter was seen, with {result['at_kill']}"
        f" of {result['total']} due items emitted and {result['unsent_at_kill']} outbox rows"
        f" unsent; attempts {attempts}"
    )

    rows = result["rows"]
    assert len(rows) == result["total"]
    emitted = [r for r in rows if r["emitted_at"] is not None]
    assert len(emitted) == len(rows), "due rows left unemitted after the restart"

    ids: dict[tuple[str, str, datetime], set[str]] = defaultdict(set)
    copies = 0
    for e in result["events"]:
        if e["type"] == "ntx.plan.created.v1":
            continue
        item = (e["subject"], e["type"], due_instant(e))
        copies += e["id"] in ids[item]
        ids[item].add(e["id"])
    due = {(r["patient_id"], r["type"], r["due_at"]) for r in emitted}
    missing = due - set(ids)
    assert not missing, (
        f"{len(missing)} emitted due rows not on the topic, e.g. {sorted(missing)[:3]}"
    )
    not_due = set(ids) - due
    assert not not_due, (
        f"{len(not_due)} items on the topic that were not due, e.g. {sorted(not_due)[:3]}"
    )
    twice = {item: found for item, found in ids.items() if len(found) > 1}
    assert not twice, (
        f"{len(twice)} items under two or more event ids, e.g. {list(twice.items())[:2]}"
    )
    assert len(ids) == len(emitted) == len(rows)
    print(f"{len(ids)} items on the topic, {copies} repeated deliveries of the same id")

    conn = await db.connect(infra.database_url, "public")
    try:  # dropped only on success: a failure keeps them for a look
        for n in range(len(attempts)):
            await conn.execute(f"DROP SCHEMA IF EXISTS k{unique}{n}_scheduler CASCADE")
    finally:
        await conn.close()
