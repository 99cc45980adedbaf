"""The gateway's repository contract. Every implementation runs these tests: the
in-memory one, and the PostgreSQL one on the session's embedded database (marked
``infra``; ``make test-unit`` leaves it out)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from services.gateway.domain.identity import resolve
from services.gateway.domain.outcome import Refused
from services.gateway.domain.pairing import HeldResult
from services.gateway.repository import in_memory
from services.gateway.store import MIGRATIONS, on_connection
from shared import db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SCHEMA = "test_gateway_repository"
MRN = ("https://hospital.example.org/mrn", "MRN-1")
NHS = ("https://fhir.nhs.uk/Id/nhs-number", "9000000009")


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.infra)])
async def repos(request):
    if request.param == "memory":
        yield in_memory()
        return
    url = request.getfixturevalue("infra").database_url
    await db.migrate(url, SCHEMA, MIGRATIONS)
    conn = await asyncpg.connect(url, server_settings={"search_path": SCHEMA})
    try:
        await conn.execute(
            "TRUNCATE patient_identifiers, held_results, resulted_parts, sent_events"
        )
        yield on_connection(conn, T0)
    finally:
        await conn.close()


def held(analyte="alt", *, resource="Observation/alt-1", at=T0, value="40") -> HeldResult:
    return HeldResult(
        "p-1", analyte, T0 - timedelta(hours=2), Decimal(value), Decimal("40"),
        f"key-{resource}", resource, "Observation", at,
    )  # fmt: skip


async def test_an_identifier_links_once_and_is_found_again(repos):
    ids = repos.patient_ids
    assert await ids.find([MRN]) == {}
    await ids.link({MRN: "pseudo-1"})
    await ids.link({MRN: "pseudo-2"})  # a second link never moves an identifier
    assert await ids.find([MRN, NHS]) == {MRN: "pseudo-1"}


async def test_resolve_keeps_one_pseudonym_and_links_a_patients_other_identifiers(repos):
    first = await resolve([(MRN,)], repos.patient_ids)
    both = await resolve([(MRN, NHS)], repos.patient_ids)
    assert first[(MRN,)] == both[(MRN, NHS)]
    assert await repos.patient_ids.find([NHS]) == {NHS: first[(MRN,)]}


async def test_identifiers_of_two_patients_on_one_patient_are_refused(repos):
    await resolve([(MRN,)], repos.patient_ids)
    await resolve([(NHS,)], repos.patient_ids)
    with pytest.raises(Refused, match="Patient.identifier"):
        await resolve([(MRN, NHS)], repos.patient_ids)


async def test_a_held_result_is_peeked_then_taken_once(repos):
    pending, result = repos.pending_results, held()
    await pending.hold(result)
    assert await pending.peek("p-1", result.collected_at, "alt") == result
    assert await pending.peek("p-1", result.collected_at, "ast") is None
    assert await pending.take("p-1", result.collected_at, "alt") == result
    assert await pending.take("p-1", result.collected_at, "alt") is None


async def test_holding_the_same_test_again_replaces_it(repos):
    pending = repos.pending_results
    await pending.hold(held(value="40"))
    await pending.hold(held(value="55", at=T0 + timedelta(hours=1)))
    taken = await pending.take("p-1", T0 - timedelta(hours=2), "alt")
    assert taken is not None and taken.value == Decimal("55")


async def test_expire_gives_back_only_results_held_before_the_moment(repos):
    pending = repos.pending_results
    old, new = (
        held("alt", at=T0),
        held("ast", resource="Observation/ast-1", at=T0 + timedelta(days=2)),
    )
    await pending.hold(old)
    await pending.hold(new)
    assert await pending.expire(T0 + timedelta(days=1)) == [old]
    assert await pending.expire(T0 + timedelta(days=1)) == []
    assert await pending.peek("p-1", new.collected_at, "ast") == replace(new)


async def test_an_event_id_is_new_once(repos):
    sent = repos.sent_events
    a = {"id": "e-a", "type": "ntx.dose.administered.v1"}
    b = {"id": "e-b", "type": "ntx.uds.resulted.v1"}
    assert await sent.first_time([a], T0) == {"e-a"}
    assert await sent.first_time([a, b], T0) == {"e-b"}
    assert await sent.first_time([a, b], T0) == set()
    assert await sent.first_time([], T0) == set()


async def test_a_result_sent_in_a_lab_resulted_is_remembered_by_its_key(repos):
    pending, at = repos.pending_results, T0 - timedelta(hours=2)
    assert not await pending.was_resulted(("p-1", at, "alt", "k1"))
    await pending.resulted([("p-1", at, "alt", "k1"), ("p-1", at, "ast", "k2")])
    await pending.resulted([("p-1", at, "alt", "k1")])
    await pending.resulted([])
    assert await pending.was_resulted(("p-1", at, "alt", "k1"))
    assert await pending.was_resulted(("p-1", at, "ast", "k2"))
    assert not await pending.was_resulted(("p-1", at, "alt", "k1-v2"))  # a new version
    assert not await pending.was_resulted(("p-2", at, "alt", "k1"))
