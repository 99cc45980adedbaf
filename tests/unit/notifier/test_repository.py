"""The delivery repository's contract. Every implementation runs these tests: the
in-memory one, and the PostgreSQL one on the session's embedded database (marked
``infra``; ``make test-unit`` leaves it out)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.notifier.domain.delivery import Delivery, endpoint_gone, plan, settle
from services.notifier.domain.outcome import AttemptResult
from services.notifier.domain.settings import DEFAULT_SETTINGS as S
from services.notifier.repository import Attempt, InMemoryDeliveryRepository
from services.notifier.store import MIGRATIONS, PostgresDeliveryRepository
from shared import db
from tests.unit.notifier.helpers import T0, endpoint, request

LEASE = T0 + S.claim_lease
LOWEST = lambda low, high: low  # noqa: E731
SCHEMA = "test_notifier_repository"
TABLES = "deliveries, delivery_attempts, disabled_endpoints, outcomes, outbox"


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.infra)])
async def repo(request):
    if request.param == "memory":
        yield InMemoryDeliveryRepository()
        return
    url = request.getfixturevalue("infra").database_url
    await db.migrate(url, SCHEMA, MIGRATIONS)
    pool = await db.create_pool(url, SCHEMA)
    try:
        await pool.execute(f"TRUNCATE {TABLES}")
        yield PostgresDeliveryRepository(pool, lambda: T0)
    finally:
        await pool.close()


async def published(repo):
    return await repo.published_outcomes()


def planned(nid: str, *names: str, at=T0, alert_id: str = "a-1", audience="care_team"):
    eps = [endpoint(n, audience=audience) for n in names]
    return plan(request(alert_id=alert_id, audience=audience), nid, b"{}", eps, frozenset(), at)


def attempt(d: Delivery, status, at=T0) -> Attempt:
    return Attempt(d.notification_id, d.endpoint, d.attempts + 1, at, status)


async def test_add_is_idempotent_and_keeps_outcomes_once(repo):
    deliveries, _ = planned("n1", "pager", "board")
    assert await repo.add(deliveries, []) == 2
    assert await repo.add(deliveries, []) == 0
    _, none = planned("n2", audience="external")
    await repo.add([], none)
    await repo.add([], none)
    assert [o.data.status for o in await published(repo)] == ["no_endpoint"]


async def test_a_repeated_request_does_not_replace_progress(repo):
    [d], _ = planned("n1", "pager")
    await repo.add([d], [])
    [claimed] = await repo.claim(T0, LEASE, {"pager": 1})
    await repo.record(settle(claimed, AttemptResult(500), T0, S, LOWEST), attempt(claimed, 500))
    await repo.add([d], [])
    assert (await repo.get(d.key)).attempts == 1


async def test_claim_takes_only_due_pending_deliveries_of_named_endpoints(repo):
    due, _ = planned("n1", "pager", "board")
    later, _ = planned("n2", "pager", at=T0 + timedelta(minutes=5))
    await repo.add(due + later, [])
    claimed = await repo.claim(T0, LEASE, {"pager": 10})
    assert [d.key for d in claimed] == [("n1", "pager")]
    assert claimed[0].next_attempt_at == LEASE


async def test_claim_respects_slots_and_takes_the_earliest_first(repo):
    for i, minutes in enumerate([3, 1, 2]):
        ds, _ = planned(f"n{i}", "pager", at=T0 + timedelta(minutes=minutes))
        await repo.add(ds, [])
    claimed = await repo.claim(T0 + timedelta(minutes=10), LEASE, {"pager": 2})
    assert [d.notification_id for d in claimed] == ["n1", "n2"]


async def test_a_claimed_delivery_is_not_claimed_again_until_the_lease_ends(repo):
    ds, _ = planned("n1", "pager")
    await repo.add(ds, [])
    assert len(await repo.claim(T0, LEASE, {"pager": 5})) == 1
    assert await repo.claim(LEASE - timedelta(seconds=1), LEASE, {"pager": 5}) == []
    again = await repo.claim(LEASE, LEASE + S.claim_lease, {"pager": 5})
    assert [d.key for d in again] == [("n1", "pager")]


async def test_record_stores_the_state_the_attempt_and_the_outcome_together(repo):
    ds, _ = planned("n1", "pager")
    await repo.add(ds, [])
    [d] = await repo.claim(T0, LEASE, {"pager": 1})
    settled = settle(d, AttemptResult(200), T0, S)
    assert await repo.record(settled, attempt(d, 200))
    assert (await repo.get(d.key)).state == "delivered"
    assert [a.status for a in await repo.attempts(d.key)] == [200]
    assert [o.type for o in await published(repo)] == ["ntx.notification.delivered.v1"]


async def test_a_late_or_second_writer_changes_nothing(repo):
    ds, _ = planned("n1", "pager")
    await repo.add(ds, [])
    [d] = await repo.claim(T0, LEASE, {"pager": 1})
    assert await repo.record(settle(d, AttemptResult(200), T0, S), attempt(d, 200))
    assert not await repo.record(settle(d, AttemptResult(500), T0, S, LOWEST), attempt(d, 500))
    assert not await repo.record(endpoint_gone(d, T0), None)
    assert (await repo.get(d.key)).state == "delivered"
    assert len(await published(repo)) == 1 and len(await repo.attempts(d.key)) == 1


async def test_a_writer_with_a_stale_attempt_count_changes_nothing(repo):
    ds, _ = planned("n1", "pager")
    await repo.add(ds, [])
    [d] = await repo.claim(T0, LEASE, {"pager": 1})
    await repo.record(settle(d, AttemptResult(500), T0, S, LOWEST), attempt(d, 500))
    assert not await repo.record(settle(d, AttemptResult(200), T0, S), attempt(d, 200))
    assert (await repo.get(d.key)).state == "pending"


async def test_pending_lookups_and_alert_lookups(repo):
    a, _ = planned("n1", "pager", "board", alert_id="a-1")
    b, _ = planned("n2", "pager", alert_id="a-2")
    await repo.add(a + b, [])
    [first] = await repo.claim(T0, LEASE, {"board": 1})
    await repo.record(settle(first, AttemptResult(200), T0, S), attempt(first, 200))
    assert sorted(d.notification_id for d in await repo.pending_for("pager")) == ["n1", "n2"]
    assert await repo.pending_endpoints() == {"pager"}
    assert sorted(d.endpoint for d in await repo.for_alert("a-1")) == ["board", "pager"]


async def test_disabled_endpoints_are_remembered_with_the_first_time(repo):
    await repo.disable_endpoint("pager", T0)
    await repo.disable_endpoint("pager", T0 + timedelta(hours=1))
    assert await repo.disabled_endpoints() == frozenset({"pager"})


async def test_outcomes_of_already_stored_deliveries_are_not_published_again(repo):
    [d], _ = planned("n1", "pager")
    gone = replace(endpoint_gone(d, T0).delivery)
    await repo.add([gone], [endpoint_gone(d, T0).outcome])
    await repo.add([gone], [endpoint_gone(d, T0).outcome])
    assert len(await published(repo)) == 1


async def test_record_many_stores_each_as_record_would_in_order(repo):
    ds, _ = planned("n1", "pager", "board")
    await repo.add(ds, [])
    first, second = await repo.claim(T0, LEASE, {"pager": 1, "board": 1})
    ok = settle(first, AttemptResult(200), T0, S)
    await repo.record(ok, attempt(first, 200))  # the first is finished already
    retried = settle(second, AttemptResult(503), T0, S, LOWEST)
    stale = settle(first, AttemptResult(500), T0, S, LOWEST)
    results = await repo.record_many(
        [(stale, attempt(first, 500)), (retried, attempt(second, 503))]
    )
    assert results == [False, True]
    assert (await repo.get(second.key)).attempts == 1
    assert [a.status for a in await repo.attempts(second.key)] == [503]
    assert [a.status for a in await repo.attempts(first.key)] == [200]
    assert len(await published(repo)) == 1
