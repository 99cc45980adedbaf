"""Receivers that fail, through the notifier service itself: the real broker, its
PostgreSQL repository, the real client and a real receiver over loopback HTTP, on a
simulated clock (DESIGN.md §9). A receiver down for an hour gets the request once
within the hour it is back; a 410 disables the endpoint; a 429's ``Retry-After`` is
honoured; a receiver that hangs is a timed-out attempt, retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.domain.settings import DEFAULT_SETTINGS as S
from services.notifier.receiver import WebhookReceiver
from shared.infra import free_port
from shared.topics import DELIVERIES
from tests.integration.harness import patient_messages
from tests.integration.notifier.serving import attempts_recorded, notifier_serving, requested
from tests.unit.notifier.helpers import endpoint, new_secret

pytestmark = pytest.mark.infra

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
STEP = timedelta(minutes=2)


async def outcomes(infra, patient: str, n: int = 1) -> list[dict]:  # type: ignore[no-untyped-def]
    return [
        e["data"] | {"type": e["type"]}
        for e in await patient_messages(infra.bootstrap, DELIVERIES.name, patient, n)
    ]


async def test_a_receiver_down_for_a_simulated_hour_gets_the_request_once_within_the_hour_back(
    infra, unique
):
    secret, port, patient = new_secret(), free_port(), f"pt-{unique}"
    pager = endpoint("pager", url=f"http://127.0.0.1:{port}/webhooks", secret=secret)
    event = requested(patient, f"a-{unique}", T0)
    async with notifier_serving(infra, unique, pager, T0) as (harness, send):
        await send(event)
        now = T0
        while now < T0 + timedelta(hours=1):  # nobody listens on the endpoint's port
            await asyncio.sleep(0.15)
            now += STEP
            harness.clock.set(now)
        async with WebhookReceiver(secret, port=port) as receiver:
            back = now
            while event["id"] not in receiver.delivered_ids():
                assert now - back <= S.retry_cap + STEP, "not delivered within the hour"
                await asyncio.sleep(0.15)
                now += STEP
                harness.clock.set(now)
            [outcome] = await outcomes(infra, patient)
    assert receiver.count(event["id"]) == 1 and receiver.rejected == 0
    assert outcome["type"] == "ntx.notification.delivered.v1"
    assert outcome["status"] == 200 and outcome["attempts"] >= 2  # failed while down, then this


async def test_a_410_disables_the_endpoint_and_fails_what_comes_after(infra, unique):
    secret, patient = new_secret(), f"pt-{unique}"
    first, later = requested(patient, f"a-{unique}-1", T0), requested(patient, f"a-{unique}-2", T0)
    async with WebhookReceiver(secret) as receiver:
        pager = endpoint("pager", url=receiver.url, secret=secret)
        receiver.answer(410, webhook_id=first["id"])
        async with notifier_serving(infra, unique, pager, T0) as (_, send):
            await send(first)
            [gone] = await outcomes(infra, patient)
            await send(later)
            after = (await outcomes(infra, patient, 2))[1]
    assert (gone["type"], gone["status"]) == ("ntx.notification.failed.v1", 410)
    assert (after["type"], after["status"]) == ("ntx.notification.failed.v1", "endpoint_disabled")
    assert receiver.count(later["id"]) == 0  # nothing is sent to a disabled endpoint


async def test_a_429_waits_for_its_retry_after_then_delivers(infra, unique):
    secret, patient = new_secret(), f"pt-{unique}"
    event = requested(patient, f"a-{unique}", T0)
    async with WebhookReceiver(secret) as receiver:
        pager = endpoint("pager", url=receiver.url, secret=secret)
        receiver.answer(429, retry_after="600", webhook_id=event["id"])
        async with notifier_serving(infra, unique, pager, T0) as (harness, send):
            await send(event)
            await attempts_recorded(infra, unique, event["id"], 1)
            harness.clock.set(T0 + timedelta(seconds=590))  # past every backoff ceiling
            await asyncio.sleep(1.0)
            assert receiver.count(event["id"]) == 1  # the receiver asked for 600 s
            harness.clock.set(T0 + timedelta(seconds=601))
            assert await receiver.wait_for(lambda r: event["id"] in r.delivered_ids(), 30)
            [outcome] = await outcomes(infra, patient)
    assert (outcome["status"], outcome["attempts"]) == (200, 2)


async def test_a_hanging_receiver_is_a_timed_out_attempt_then_a_delivery(infra, unique):
    secret, patient = new_secret(), f"pt-{unique}"
    event = requested(patient, f"a-{unique}", T0)
    async with WebhookReceiver(secret) as receiver:
        pager = endpoint("pager", url=receiver.url, secret=secret, timeout_s=0.5)
        receiver.hang(webhook_id=event["id"])
        async with notifier_serving(infra, unique, pager, T0) as (harness, send):
            await send(event)
            await attempts_recorded(infra, unique, event["id"], 1)
            harness.clock.set(T0 + timedelta(minutes=1))  # past the first retry's ceiling
            assert await receiver.wait_for(lambda r: event["id"] in r.delivered_ids(), 30)
            [outcome] = await outcomes(infra, patient)
    hung = [r.status for r in receiver.received if r.webhook_id == event["id"]]
    assert hung == [0, 200]  # the sender gave up on the first, then delivered
    assert (outcome["status"], outcome["attempts"]) == (200, 2)
