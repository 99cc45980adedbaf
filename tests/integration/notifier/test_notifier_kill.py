"""kill -9 the notifier mid-delivery and restart it: every requested notification
reaches the receiver at least once, a repeat carries the same ``webhook-id`` (and
the same body, so the receiver drops it by id), each delivery ends with exactly one
outcome event, and the acknowledgement route answers over real HTTP (DESIGN.md §5,
§9).

Black box: ``ntx service notifier`` runs as a separate OS process on its own schema
(``NTX_SCHEMA_PREFIX``), a simulated clock file and endpoints from
``NTX_NOTIFIER_ENDPOINTS``; the receiver is the demo receiver in this process,
verifying every signature with ``standardwebhooks``. It answers slowly, so requests
are in flight when the kill lands. Deliveries claimed by the killed process are
attempted again when their lease ends: the clock is moved past it after the restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from services.notifier.domain.acknowledgement import new_token
from services.notifier.domain.settings import DEFAULT_SETTINGS as S
from services.notifier.receiver import WebhookReceiver
from shared import db
from shared.clock import FileClock
from shared.envelope import build
from shared.topics import DELIVERIES, NOTIFICATIONS
from tests.integration.harness import publish, read_topic
from tests.integration.service_process import ServiceProcess
from tests.unit.notifier.helpers import new_secret, request

pytestmark = pytest.mark.infra

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
REQUESTS = 200
IN_FLIGHT = 4  # the endpoint's max_in_flight: at most this many attempts cut off


async def until(check, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_kill_9_mid_delivery_loses_nothing_and_repeats_by_webhook_id(infra, unique, tmp_path):
    prefix, secret = f"k{unique}_", new_secret()
    patients = [f"kill-{unique}-{i % 20:02d}" for i in range(REQUESTS)]
    events = [
        build(
            "ntx.notification.requested.v1",
            request(patient_id=p, alert_id=f"a-{unique}-{i}"),
            source="ntx/alerts",
            time=T0,
        )
        for i, p in enumerate(patients)
    ]
    mine = {e["id"] for e in events}
    token, digest = new_token()
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    async with WebhookReceiver(secret) as receiver:
        receiver.slow(0.1, times=10 * REQUESTS)  # requests stay in flight a while
        endpoints = [
            {
                "name": "pager",
                "audience": "care_team",
                "url": receiver.url,
                "secret": secret,
                "ack_token_sha256": digest,
                "max_in_flight": IN_FLIGHT,
            }
        ]
        proc = ServiceProcess(
            "notifier",
            infra,
            prefix,
            tmp_path / "notifier.log",
            clock=clock,
            NTX_TIMER_POLL_S="0.02",
            NTX_RELAY_POLL_S="0.02",
            NTX_NOTIFIER_ENDPOINTS=json.dumps(endpoints),
        )
        try:
            proc.start()
            await proc.wait_healthy()
            await publish(infra.bootstrap, NOTIFICATIONS.name, events)

            await until(lambda: len(receiver.delivered_ids() & mine) >= REQUESTS // 3, "a third")
            proc.kill()
            cut_off = receiver.in_flight
            delivered_at_kill = len(receiver.delivered_ids() & mine)
            assert delivered_at_kill < REQUESTS, "the kill came after every delivery"

            proc.start()
            await proc.wait_healthy()
            clock.set(T0 + S.claim_lease)  # the killed process's claims run out
            await until(lambda: mine <= receiver.delivered_ids(), "every delivery", 120)

            ack = json.dumps({"alert_id": f"a-{unique}-0", "by": "nurse-17"}).encode()
            assert proc.call("/acknowledgements", ack, token)[0] == 202
            assert proc.call("/acknowledgements", ack, "ntxack_wrong")[0] == 401
            assert proc.call("/acknowledgements", b'{"alert_id": "x"}', token)[0] == 400
            conn = await db.connect(infra.database_url, f"{prefix}notifier")
            try:
                await until_sent(conn)
                states = await conn.fetch(
                    "SELECT state, count(*) AS n FROM deliveries WHERE notification_id = ANY($1)"
                    " GROUP BY state",
                    list(mine),
                )
            finally:
                await conn.close()
        finally:
            proc.kill()

    assert receiver.rejected == 0  # every signature verified
    mine_arrivals = [r for r in receiver.received if r.webhook_id in mine]
    assert all(r.event["id"] == r.webhook_id for r in mine_arrivals)  # same id, same body
    repeats = {k: n for k, n in receiver.duplicates().items() if k in mine}
    # only attempts cut off by the kill are repeated, once each
    assert len(repeats) <= IN_FLIGHT and all(n == 2 for n in repeats.values()), (repeats, cut_off)

    assert {r["state"]: r["n"] for r in states} == {"delivered": REQUESTS}

    keys = {p.encode() for p in patients}
    outcomes = await read_topic(
        infra.bootstrap,
        DELIVERIES.name,
        until=lambda ms: len({json.loads(m.value)["id"] for m in ms if m.key in keys}) >= REQUESTS,
    )
    by_request: dict[str, set[str]] = {}
    for m in outcomes:
        if m.key in keys:
            event = json.loads(m.value)
            by_request.setdefault(event["data"]["notification_id"], set()).add(event["id"])
    assert set(by_request) == mine
    assert all(len(ids) == 1 for ids in by_request.values())  # one outcome per delivery


async def until_sent(conn) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
        assert time.monotonic() < deadline, "outbox not drained"
        await asyncio.sleep(0.1)
