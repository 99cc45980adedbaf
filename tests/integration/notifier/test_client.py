"""The delivery client against a real local receiver over loopback HTTP: signatures,
retries, 410, 429 with Retry-After, a hang, and the bound on requests in flight."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.notifier.client import WebhookClient
from services.notifier.domain.delivery import Delivery, plan, settle
from services.notifier.domain.settings import DEFAULT_SETTINGS as S
from services.notifier.message import CONTENT_TYPE, webhook_body
from services.notifier.receiver import WebhookReceiver
from shared.envelope import build, parse_envelope
from shared.infra import free_port
from tests.unit.notifier.helpers import T0, endpoint, new_secret, request

LOWEST = lambda low, high: low  # noqa: E731


def delivery_to(ep) -> Delivery:
    nid = str(uuid.uuid4())
    raw = build("ntx.notification.requested.v1", request(), source="ntx/alerts", time=T0, id_=nid)
    body = webhook_body(parse_envelope(json.dumps(raw).encode()))
    [delivery], _ = plan(request(), nid, body, [ep], frozenset(), T0)
    return delivery


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
async def receiver(secret):
    async with WebhookReceiver(secret) as r:
        yield r


@pytest.fixture
async def client():
    async with WebhookClient() as c:
        yield c


async def test_a_delivery_arrives_signed_and_verified(receiver, client, secret):
    ep = endpoint(url=receiver.url, secret=secret)
    d = delivery_to(ep)
    result = await client.send(ep, d)
    assert result.status == 200
    [got] = receiver.received
    assert got.webhook_id == d.notification_id and receiver.rejected == 0
    assert got.headers["content-type"] == CONTENT_TYPE
    assert got.event == json.loads(d.body)
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60  # wall clock


async def test_a_wrong_secret_is_refused_by_the_receiver(receiver, client):
    ep = endpoint(url=receiver.url, secret=new_secret())
    result = await client.send(ep, delivery_to(ep))
    assert result.status == 401 and receiver.rejected == 1 and receiver.received == []


async def test_500_then_success_repeats_the_same_webhook_id(receiver, client, secret):
    ep = endpoint(url=receiver.url, secret=secret)
    d = delivery_to(ep)
    receiver.answer(500)
    first = settle(d, await client.send(ep, d), T0, S, draw=LOWEST)
    assert first.delivery.state == "pending" and first.outcome is None
    second = settle(first.delivery, await client.send(ep, d), T0, S)
    assert second.delivery.state == "delivered" and second.delivery.attempts == 2
    assert second.outcome.data.status == 200
    assert receiver.count(d.notification_id) == 2
    assert receiver.duplicates() == {d.notification_id: 2}
    assert [r.status for r in receiver.received] == [500, 200]


async def test_410_disables_the_endpoint(receiver, client, secret):
    ep = endpoint(url=receiver.url, secret=secret)
    receiver.answer(410)
    settled = settle(delivery_to(ep), await client.send(ep, delivery_to(ep)), T0, S)
    assert settled.disable_endpoint and settled.delivery.state == "endpoint_disabled"
    assert (settled.outcome.type, settled.outcome.data.status) == (
        "ntx.notification.failed.v1",
        410,
    )


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_429_honours_retry_after(receiver, client, secret, form):
    ep = endpoint(url=receiver.url, secret=secret)
    if form == "seconds":
        header = "120"
    else:  # an HTTP date two minutes ahead of the wall clock
        header = format_datetime(datetime.now(UTC) + timedelta(seconds=121), usegmt=True)
    receiver.answer(429, retry_after=header)
    result = await client.send(ep, delivery_to(ep))
    assert result.status == 429
    assert timedelta(seconds=100) <= result.retry_after <= timedelta(seconds=121)
    settled = settle(delivery_to(ep), result, T0, S, draw=LOWEST)
    assert settled.delivery.next_attempt_at == T0 + result.retry_after


async def test_a_hang_times_out_as_a_failed_attempt(receiver, client, secret):
    ep = endpoint(url=receiver.url, secret=secret, timeout_s=0.5)
    receiver.hang()
    started = time.monotonic()
    result = await client.send(ep, delivery_to(ep))
    elapsed = time.monotonic() - started
    assert result.status == "timeout"
    assert 0.5 <= elapsed < 10
    assert await receiver.wait_for(lambda r: [x.status for x in r.received] == [0], 5)
    settled = settle(delivery_to(ep), result, T0, S)
    assert settled.delivery.state == "pending" and settled.delivery.last_status == "timeout"


async def test_nothing_listening_is_a_connection_error(client, secret):
    ep = endpoint(url=f"http://127.0.0.1:{free_port()}/webhooks", secret=secret)
    result = await client.send(ep, delivery_to(ep))
    assert result.status == "connection_error"


async def test_redirects_are_not_followed(receiver, client, secret):
    ep = endpoint(url=receiver.url, secret=secret)
    receiver.answer(301)
    assert (await client.send(ep, delivery_to(ep))).status == 301
    assert len(receiver.received) == 1


async def test_requests_in_flight_are_bounded_per_endpoint(receiver, client, secret):
    """Twelve deliveries at once to an endpoint allowing 4, each held 0.5 s by the
    receiver: never more than 4 at the receiver, and 4 at some moment."""
    ep = endpoint(url=receiver.url, secret=secret, max_in_flight=4)
    receiver.slow(0.5, times=12)
    results = await asyncio.gather(*(client.send(ep, delivery_to(ep)) for _ in range(12)))
    assert [r.status for r in results] == [200] * 12
    assert receiver.peak_in_flight == 4


async def test_each_endpoint_has_its_own_bound(receiver, client, secret):
    a = endpoint("a", url=receiver.url, secret=secret, max_in_flight=2)
    b = endpoint("b", url=receiver.url, secret=secret, max_in_flight=3)
    receiver.slow(0.5, times=12)
    sends = [client.send(ep, delivery_to(ep)) for ep in (a, b) for _ in range(6)]
    await asyncio.gather(*sends)
    assert receiver.peak_in_flight == 5


async def test_logs_never_carry_the_url_or_a_secret(receiver, client, secret, caplog):
    caplog.set_level(logging.DEBUG)
    ep = endpoint(url=receiver.url + "?token=URLTOKEN", secret=secret)
    receiver.answer(500)
    d = delivery_to(ep)
    await client.send(ep, d)
    await client.send(ep, d)
    assert any(getattr(r, "webhook_id", None) == d.notification_id for r in caplog.records)
    for hidden in (secret, "URLTOKEN", receiver.url):
        assert hidden not in caplog.text
