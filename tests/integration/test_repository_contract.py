"""Each service's repository, one suite on both implementations: the PostgreSQL one
(on the session's embedded database, marked ``infra``) and the in-memory one the
handler tests and the replay run on. Every step is its own unit of work, so what is
kept is what a later unit reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta

import pytest

from services.alerts.domain.state import PatientAlertState
from services.alerts.repository import MemoryAlertStates
from services.alerts.service import SPEC as ALERTS
from services.intake.repository import MemoryRequests, OnFile
from services.intake.service import SPEC as INTAKE
from services.scheduler.domain import new_state
from services.scheduler.repository import Item, MemoryPlans, Plan
from services.scheduler.service import SPEC as SCHEDULER
from shared import db
from shared.events import IntakeRequested
from shared.memory import MemoryUnits
from shared.settings import Settings
from shared.spec import ServiceSpec
from shared.unit_of_work import Repositories, Units
from tests.integration.builders import intake_request, plan

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.infra)])
def store(request: pytest.FixtureRequest, unique: str):
    """Opens a service's units of work on this store: ``store(SPEC, MemoryRepos)``."""

    @asynccontextmanager
    async def units(spec: ServiceSpec, memory: Repositories) -> AsyncIterator:
        if request.param == "memory":
            yield MemoryUnits(spec.source, memory)
            return
        infra = request.getfixturevalue("infra")
        schema = f"{spec.name}_{unique}"
        await db.migrate(infra.database_url, schema, spec.migrations)
        pool = await db.create_pool(infra.database_url, schema)
        try:
            yield Units(pool, spec.source, schema, Settings(), spec.repositories)
        finally:
            await pool.close()

    return units


# --- intake: the request on file ---------------------------------------------------


def on_file(patient: str, at: datetime, decision: str = "accepted", **changes) -> OnFile:
    envelope = intake_request(patient, at, **changes)
    request = IntakeRequested.model_validate_json(json.dumps(envelope["data"]))
    return OnFile(envelope["source"], envelope["id"], at, request, decision)


async def test_requests_on_file_are_kept_replaced_and_redecided(store):
    first, other = on_file("p1", NOW - HOUR), on_file("p2", NOW)
    async with store(INTAKE, MemoryRequests) as units:
        async with units.begin(NOW) as uow:
            assert await uow.repos.on_file("p1") is None
            await uow.repos.keep([first, other])
        async with units.begin(NOW) as uow:
            assert await uow.repos.requested_at({"p1", "p2", "p3"}) == {
                "p1": NOW - HOUR,
                "p2": NOW,
            }
            assert same(await uow.repos.on_file("p1"), first)
        newer = on_file("p1", NOW, "deferred", formulation="xr")
        async with units.begin(NOW) as uow:
            await uow.repos.keep([newer])
        async with units.begin(NOW + HOUR) as uow:
            await uow.repos.decided("p1", "accepted")
        async with units.begin(NOW) as uow:
            kept = await uow.repos.on_file("p1")
    assert same(kept, newer._replace(decision="accepted"))
    assert kept.request.formulation == "xr"


def same(kept: OnFile | None, put: OnFile) -> bool:
    """Kept as put; the request comes back as its stored version (``StoredRequest``)."""
    assert kept is not None
    dump = kept.request.model_dump(exclude={"schema_version"})
    return (
        kept._replace(request=None) == put._replace(request=None)
        and dump == put.request.model_dump()
    )


# --- scheduler: plans and due items --------------------------------------------------


def item(patient: str, key: str, due_at: datetime) -> Item:
    return Item(patient, key, "ntx.uds.due.v1", due_at, f'{{"patient_id": "{patient}"}}')


def a_plan(patient: str, until: datetime) -> Plan:
    return Plan(new_state(plan(patient, date(2026, 3, 2))), until)


async def test_plans_round_trip_and_run_short_in_horizon_order(store):
    async with store(SCHEDULER, MemoryPlans) as units:
        async with units.begin(NOW) as uow:
            await uow.repos.save({"p1": a_plan("p1", NOW + 2 * HOUR), "p2": a_plan("p2", NOW)})
        async with units.begin(NOW) as uow:
            loaded = await uow.repos.load({"p1", "p9"})
            short = await uow.repos.running_short(NOW + 3 * HOUR, 10)
            first = await uow.repos.running_short(NOW + 3 * HOUR, 1)
            await uow.repos.extend([("p2", NOW + 5 * HOUR, False)])
        async with units.begin(NOW) as uow:
            after = await uow.repos.running_short(NOW + 6 * HOUR, 10)
    assert list(loaded) == ["p1"] and loaded["p1"] == a_plan("p1", NOW + 2 * HOUR)
    assert list(short) == ["p2", "p1"] and list(first) == ["p2"]
    assert list(after) == ["p1"]  # p2 went inactive


async def test_due_items_are_claimed_once_oldest_first_and_marked_late(store):
    async with store(SCHEDULER, MemoryPlans) as units:
        async with units.begin(NOW) as uow:
            await uow.repos.add_items(
                [item("p1", "b", NOW), item("p2", "a", NOW - HOUR), item("p1", "c", NOW + HOUR)]
            )
            await uow.repos.add_items([Item("p1", "b", "ntx.lab.due.v1", NOW, "{}")])  # kept
        async with units.begin(NOW) as uow:
            first = await uow.repos.claim_due(NOW, 1, timedelta(minutes=5))
            rest = await uow.repos.claim_due(NOW, 10, timedelta(minutes=5))
            again = await uow.repos.claim_due(NOW, 10, timedelta(minutes=5))
    assert [(i.patient_id, i.key) for i in first] == [("p2", "a")]
    assert [(i.key, i.type) for i in rest] == [("b", "ntx.uds.due.v1")]
    assert again == []


async def test_dropping_unemitted_items_keeps_the_emitted_and_other_patients(store):
    async with store(SCHEDULER, MemoryPlans) as units:
        async with units.begin(NOW) as uow:
            await uow.repos.add_items(
                [
                    item("p1", "sent", NOW - HOUR),
                    item("p1", "past", NOW - HOUR / 2),
                    item("p1", "future", NOW + HOUR),
                    item("p2", "past", NOW - HOUR / 2),
                    item("p3", "past", NOW - HOUR / 2),
                ]
            )
        async with units.begin(NOW - HOUR) as uow:
            await uow.repos.claim_due(NOW - HOUR, 1, timedelta(minutes=5))  # p1 "sent"
        async with units.begin(NOW) as uow:
            # p1 from now on; p2 whole (a new plan); p3 untouched
            await uow.repos.drop_unemitted(["p1", "p2"], ["p2"], NOW)
        async with units.begin(NOW + 2 * HOUR) as uow:
            left = await uow.repos.claim_due(NOW + 2 * HOUR, 10, timedelta(minutes=5))
    assert [(i.patient_id, i.key) for i in left] == [("p1", "past"), ("p3", "past")]


# --- alerts: the alert state ----------------------------------------------------------


async def test_alert_states_round_trip_and_unknown_patients_are_none(store):
    state = PatientAlertState(patient_id="p1")
    async with store(ALERTS, MemoryAlertStates) as units:
        async with units.begin(NOW) as uow:
            assert await uow.repos.load({"p1"}) == {"p1": None}
            await uow.repos.save({"p1": state})
            await uow.repos.save({})
        changed = state.model_copy(update={"has_plan": True})
        async with units.begin(NOW) as uow:
            assert await uow.repos.load({"p1", "p2"}) == {"p1": state, "p2": None}
            await uow.repos.save({"p1": changed})
        async with units.begin(NOW) as uow:
            assert (await uow.repos.load({"p1"}))["p1"] == changed


async def test_a_failed_unit_keeps_nothing_it_wrote(store):
    async with store(ALERTS, MemoryAlertStates) as units:
        with pytest.raises(RuntimeError):
            async with units.begin(NOW) as uow:
                await uow.repos.save({"p1": PatientAlertState(patient_id="p1")})
                raise RuntimeError("a defect")
        async with units.begin(NOW) as uow:
            assert await uow.repos.load({"p1"}) == {"p1": None}
