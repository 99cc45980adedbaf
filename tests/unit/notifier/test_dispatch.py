"""The dispatcher on the in-memory repository, a scripted sender and a simulated
clock: acceptance, retries over time, 410, removed endpoints, the bound on slots,
and a notifier killed mid-delivery."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta

import pytest

from services.notifier.config import NotifierConfig
from services.notifier.dispatch import Dispatcher
from services.notifier.domain.outcome import AttemptResult
from services.notifier.domain.settings import DEFAULT_SETTINGS as S
from services.notifier.repository import InMemoryDeliveryRepository
from shared.clock import SimulatedClock
from shared.envelope import InvalidEvent, build, parse
from tests.unit.notifier.fakes import ScriptedSender
from tests.unit.notifier.helpers import T0, endpoint, request

DELIVERED, FAILED = "ntx.notification.delivered.v1", "ntx.notification.failed.v1"


def requested(n: int = 0, **kw):
    raw = build(
        "ntx.notification.requested.v1",
        request(alert_id=f"a-{n}", **kw),
        source="ntx/alerts",
        time=T0,
        id_=f"00000000-0000-4000-8000-{n:012d}",
    )
    return parse(json.dumps(raw).encode())


def setup(*endpoints, sender=None, seed: int = 16):
    repo, clock = InMemoryDeliveryRepository(), SimulatedClock(T0)
    sender = sender or ScriptedSender()
    config = NotifierConfig(endpoints=endpoints or (endpoint("pager"),))
    d = Dispatcher(repo, sender, config, clock, draw=random.Random(seed).uniform)
    return d, repo, sender, clock


def outcomes(repo):
    return [(o.type, o.data.endpoint, o.data.attempts, o.data.status) for o in repo.published]


async def test_a_request_is_delivered_to_each_endpoint_of_its_audience():
    d, repo, sender, _ = setup(
        endpoint("pager"), endpoint("board"), endpoint("sms", audience="patient")
    )
    assert await d.accept(requested()) == 2
    assert await d.run_once() == 2
    assert sorted(sender.sent) == [
        ("board", requested().envelope.id),
        ("pager", requested().envelope.id),
    ]
    assert sorted(outcomes(repo)) == [(DELIVERED, "board", 1, 200), (DELIVERED, "pager", 1, 200)]


async def test_a_repeated_request_is_accepted_once():
    d, repo, sender, _ = setup()
    assert await d.accept(requested()) == 1
    await d.run_once()
    assert await d.accept(requested()) == 0
    assert await d.run_once() == 0 and len(sender.sent) == 1 and len(repo.published) == 1


async def test_no_endpoint_for_the_audience_is_published_as_failed():
    d, repo, _, _ = setup()
    await d.accept(requested(audience="external"))
    assert outcomes(repo) == [(FAILED, None, 0, "no_endpoint")]


async def test_a_request_that_is_not_a_notification_is_refused():
    d, *_ = setup()
    raw = build(
        "ntx.alert.raised.v1",
        {"patient_id": "p", "alert_id": "a", "alert": "x", "severity": "high", "reason": "r"},
        source="s",
        time=T0,
    )
    with pytest.raises(InvalidEvent):
        await d.accept(parse(json.dumps(raw).encode()))


async def test_a_failed_attempt_waits_for_its_time_then_succeeds():
    d, repo, sender, clock = setup()
    sender.script("pager", AttemptResult(500))
    await d.accept(requested())
    assert await d.run_once() == 1
    [pending] = [x for x in (await repo.pending_for("pager"))]
    assert await d.run_once() == 0  # not due yet
    clock.set(pending.next_attempt_at)
    assert await d.run_once() == 1
    assert outcomes(repo) == [(DELIVERED, "pager", 2, 200)]
    assert [a.status for a in await repo.attempts(pending.key)] == [500, 200]


async def test_410_disables_the_endpoint_and_fails_what_waits_for_it():
    d, repo, sender, clock = setup(endpoint("pager"), endpoint("board"))
    sender.script("pager", AttemptResult(500))
    await d.accept(requested(1))
    await d.run_once()  # pager: 500, pending; board: delivered
    sender.script("pager", AttemptResult(410))
    await d.accept(requested(2))
    await d.run_once()  # pager: 410 for request 2
    assert await repo.disabled_endpoints() == frozenset({"pager"})
    await d.accept(requested(3))
    got = outcomes(repo)
    assert (FAILED, "pager", 1, 410) in got
    assert (FAILED, "pager", 1, "endpoint_disabled") in got  # request 1, waiting for a retry
    assert (FAILED, "pager", 0, "endpoint_disabled") in got  # request 3, at once
    clock.set(T0 + timedelta(hours=2))
    await d.run_once()
    assert ("pager", requested(3).envelope.id) not in sender.sent
    board = [o for o in outcomes(repo) if o[1] == "board"]
    assert board == [(DELIVERED, "board", 1, 200)] * 3  # the other endpoint carries on


async def test_an_attempt_in_flight_when_its_endpoint_is_disabled_fails_too():
    release = asyncio.Event()

    class Sender:
        calls = 0

        async def send(self, endpoint, delivery):
            Sender.calls += 1
            if Sender.calls == 1:
                return AttemptResult(410)
            await release.wait()
            return AttemptResult(503)

    d, repo, _, _ = setup(endpoint("pager"), sender=Sender())
    await d.accept(requested(1))
    await d.accept(requested(2))
    run = asyncio.create_task(d.run_once())
    while len(repo.published) < 1:
        await asyncio.sleep(0.01)
    release.set()
    await run
    assert sorted(outcomes(repo), key=str) == sorted(
        [(FAILED, "pager", 1, 410), (FAILED, "pager", 1, "endpoint_disabled")], key=str
    )


async def test_an_endpoint_removed_from_the_configuration_fails_its_deliveries():
    d, repo, sender, clock = setup(endpoint("pager"), endpoint("board"))
    sender.script("pager", AttemptResult(500))
    await d.accept(requested())
    await d.run_once()
    after = Dispatcher(repo, sender, NotifierConfig(endpoints=(endpoint("board"),)), clock)
    await after.run_once()
    assert (FAILED, "pager", 1, "endpoint_disabled") in outcomes(repo)


async def test_a_receiver_down_for_an_hour_gets_everything_within_the_hour_it_is_back():
    """Connection refused for a simulated hour, then up: every delivery arrives, at
    most the retry cap after the receiver's return, and no failure is published."""
    back_at = T0 + timedelta(hours=1)
    clock_box = {}

    def answer(_delivery):
        return AttemptResult("connection_error" if clock_box["clock"].now() < back_at else 200)

    d, repo, sender, clock = setup(
        endpoint("pager"), endpoint("board"), sender=ScriptedSender(answer)
    )
    clock_box["clock"] = clock
    for n in range(20):
        await d.accept(requested(n))
    delivered_at = {}
    now = T0
    while now < T0 + timedelta(hours=3):
        await d.run_once()
        for o in repo.published:
            delivered_at.setdefault((o.data.notification_id, o.data.endpoint), now)
        now += timedelta(minutes=1)
        clock.set(now)
    assert len(delivered_at) == 40
    assert {o.type for o in repo.published} == {DELIVERED}
    assert max(delivered_at.values()) <= back_at + S.retry_cap + timedelta(minutes=1)
    assert all(o.data.attempts >= 2 for o in repo.published)


async def test_a_receiver_that_never_returns_fails_at_the_horizon():
    d, repo, sender, clock = setup(sender=ScriptedSender(AttemptResult(503)))
    await d.accept(requested())
    now = T0
    while now <= T0 + S.give_up_after + timedelta(minutes=5):
        await d.run_once()
        now += timedelta(minutes=5)
        clock.set(now)
    [(type_, name, attempts, status)] = outcomes(repo)
    assert (type_, name, status) == (FAILED, "pager", 503)
    assert 10 <= attempts <= S.max_attempts
    [delivery] = [x for x in repo.deliveries.values()]
    assert delivery.finished_at <= T0 + S.give_up_after + timedelta(minutes=5)


async def test_slots_bound_the_attempts_in_flight_per_endpoint():
    sender = ScriptedSender()
    sender.gate = asyncio.Event()
    d, repo, _, _ = setup(endpoint("pager", max_in_flight=3), sender=sender)
    for n in range(10):
        await d.accept(requested(n))
    stop = asyncio.Event()
    run = asyncio.create_task(d.run(stop, poll_s=0.01))
    while sender.in_flight < 3:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # room to start more, were it allowed
    assert sender.in_flight == 3
    sender.gate.set()
    while len(repo.published) < 10:
        await asyncio.sleep(0.01)
    stop.set()
    await run
    assert sender.peak == 3 and len(sender.sent) == 10


async def test_a_notifier_killed_mid_delivery_resends_with_the_same_webhook_id():
    hung = ScriptedSender()
    hung.gate = asyncio.Event()  # never set: the request is in flight when "killed"
    first, repo, _, clock = setup(sender=hung)
    await first.accept(requested(7))
    killed = asyncio.create_task(first.run_once())
    while not hung.sent:
        await asyncio.sleep(0.01)
    killed.cancel()  # nothing after the send runs, as after kill -9
    with pytest.raises(asyncio.CancelledError):
        await killed
    again = ScriptedSender()
    second = Dispatcher(repo, again, first.config, clock)
    assert await second.run_once() == 0  # still leased to the dead notifier
    clock.set(T0 + S.claim_lease)
    assert await second.run_once() == 1
    assert again.sent == hung.sent == [("pager", requested(7).envelope.id)]
    assert outcomes(repo) == [(DELIVERED, "pager", 1, 200)]


async def test_a_defect_in_the_sender_is_a_failed_attempt_not_a_crash():
    class Broken:
        async def send(self, endpoint, delivery):
            raise RuntimeError("bug")

    d, repo, _, _ = setup(sender=Broken())
    await d.accept(requested())
    assert await d.run_once() == 1
    [pending] = await repo.pending_for("pager")
    assert pending.last_status == "connection_error" and pending.attempts == 1


async def test_a_failure_to_claim_does_not_stop_the_loop():
    d, repo, sender, _ = setup()
    await d.accept(requested())
    claim, failures = repo.claim, []

    async def flaky(*args):
        if not failures:
            failures.append(1)
            raise ConnectionError("database away")
        return await claim(*args)

    repo.claim = flaky
    stop = asyncio.Event()
    run = asyncio.create_task(d.run(stop, poll_s=0.01))
    while not repo.published:
        await asyncio.sleep(0.01)
    stop.set()
    await run
    assert failures == [1] and outcomes(repo) == [(DELIVERED, "pager", 1, 200)]
