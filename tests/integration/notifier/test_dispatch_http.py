"""The dispatcher with the real client and the real receiver over loopback HTTP (the
repository in memory): many deliveries verified once each, a receiver down for a
simulated hour, and a 410 published as a failure."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from services.notifier.client import WebhookClient
from services.notifier.config import NotifierConfig
from services.notifier.dispatch import Dispatcher
from services.notifier.receiver import WebhookReceiver
from services.notifier.repository import InMemoryDeliveryRepository
from shared.clock import SimulatedClock
from shared.envelope import build, parse
from shared.infra import free_port
from tests.unit.notifier.helpers import T0, endpoint, new_secret, request

DELIVERED, FAILED = "ntx.notification.delivered.v1", "ntx.notification.failed.v1"


def requested(n: int):
    raw = build(
        "ntx.notification.requested.v1",
        request(alert_id=f"a-{n}", patient_id=f"pt-{n % 7}"),
        source="ntx/alerts",
        time=T0,
        id_=f"00000000-0000-4000-8000-{n:012d}",
    )
    return parse(json.dumps(raw).encode())


async def test_every_request_arrives_verified_exactly_once():
    secret = new_secret()
    async with WebhookReceiver(secret) as receiver, WebhookClient() as client:
        config = NotifierConfig(
            endpoints=(endpoint(url=receiver.url, secret=secret, max_in_flight=8),)
        )
        repo = InMemoryDeliveryRepository()
        dispatcher = Dispatcher(repo, client, config, SimulatedClock(T0))
        for n in range(200):
            await dispatcher.accept(requested(n))
        stop = asyncio.Event()
        run = asyncio.create_task(dispatcher.run(stop, poll_s=0.01))
        assert await receiver.wait_for(lambda r: len(r.delivered_ids()) == 200, timeout=60)
        stop.set()
        await run
    assert receiver.duplicates() == {} and receiver.rejected == 0
    assert receiver.delivered_ids() == {requested(n).envelope.id for n in range(200)}
    assert len(repo.published) == 200 and {o.type for o in repo.published} == {DELIVERED}
    assert receiver.peak_in_flight <= 8


async def test_a_receiver_down_for_a_simulated_hour_gets_its_deliveries_once_back():
    secret, port = new_secret(), free_port()
    clock = SimulatedClock(T0)
    repo = InMemoryDeliveryRepository()
    async with WebhookClient() as client:
        url = f"http://127.0.0.1:{port}/webhooks"
        config = NotifierConfig(endpoints=(endpoint(url=url, secret=secret),))
        dispatcher = Dispatcher(repo, client, config, clock)
        for n in range(10):
            await dispatcher.accept(requested(n))
        now = T0
        while now < T0 + timedelta(hours=1):  # nobody listening
            await dispatcher.run_once()
            now += timedelta(minutes=2)
            clock.set(now)
        assert repo.published == []  # failed attempts, nothing given up
        tried = [d.attempts for d in repo.deliveries.values()]
        assert min(tried) >= 2
        async with WebhookReceiver(secret, port=port) as receiver:
            back = now
            while len(repo.published) < 10 and now < back + timedelta(hours=2):
                await dispatcher.run_once()
                now += timedelta(minutes=2)
                clock.set(now)
            assert now - back <= timedelta(hours=1, minutes=2)  # the retry cap
            assert len(receiver.delivered_ids()) == 10 and receiver.duplicates() == {}
    assert {o.type for o in repo.published} == {DELIVERED}
    assert all(o.data.attempts >= 3 for o in repo.published)


async def test_an_endpoint_answering_410_is_disabled_and_the_failure_published():
    secret = new_secret()
    async with WebhookReceiver(secret) as receiver, WebhookClient() as client:
        receiver.always(410)
        config = NotifierConfig(
            endpoints=(endpoint("pager", url=receiver.url, secret=secret, max_in_flight=1),)
        )
        repo = InMemoryDeliveryRepository()
        dispatcher = Dispatcher(repo, client, config, SimulatedClock(T0))
        for n in range(3):
            await dispatcher.accept(requested(n))
        await dispatcher.run_once()
        assert await repo.disabled_endpoints() == frozenset({"pager"})
        await dispatcher.run_once()
        await dispatcher.accept(requested(3))
    assert len(receiver.received) == 1  # nothing sent after the 410
    statuses = sorted(str(o.data.status) for o in repo.published)
    assert [o.type for o in repo.published] == [FAILED] * 4
    assert statuses == ["410", "endpoint_disabled", "endpoint_disabled", "endpoint_disabled"]
