"""Intake's handlers on the in-memory unit of work: which request is on file when
requests arrive out of order (supersede), the audit, and the re-check of a deferral
on its earliest start. No broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.intake.repository import MemoryRequests
from services.intake.service import SPEC
from shared.envelope import InvalidEvent
from tests.integration.builders import intake_request
from tests.unit.in_memory import InMemoryService

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York


def request(patient: str, at: datetime = NOW, **changes) -> dict:
    return intake_request(patient, at, **changes)


@pytest.fixture
def intake() -> InMemoryService:
    return InMemoryService(SPEC, MemoryRequests)


def triggers(service: InMemoryService, patient: str) -> list[str]:
    return [r.trigger for r in service.table("decisions").values() if r.patient_id == patient]


def on_file(service: InMemoryService, patient: str) -> str:
    return service.table("patients")[patient][1]  # the request id


async def test_an_older_request_arriving_later_is_superseded(intake):
    newer = request("p1")
    older = request("p1", at=NOW - timedelta(hours=1), formulation="xr")
    await intake.handle(NOW, newer)
    await intake.handle(NOW, older)
    assert triggers(intake, "p1") == ["request", "superseded"]
    assert on_file(intake, "p1") == newer["id"]
    out = await intake.published()
    assert [e["type"] for e in out] == ["ntx.intake.accepted.v1"]
    assert out[0]["data"]["plan"]["formulation"] == "oral"


async def test_in_one_batch_the_newest_request_wins_whatever_the_order(intake):
    older = request("p1", at=NOW - timedelta(hours=1), formulation="xr")
    newer = request("p1")
    late = request("p1", at=NOW - timedelta(hours=2))
    await intake.handle(NOW, older, newer, late)
    assert triggers(intake, "p1") == ["request", "request", "superseded"]
    assert on_file(intake, "p1") == newer["id"]
    decided = [e["data"]["plan"]["formulation"] for e in await intake.published()]
    assert decided == ["xr", "oral"]


async def test_a_request_at_the_same_instant_replaces_the_one_on_file(intake):
    """Only a strictly older request is superseded (``newest > env.time``)."""
    first, second = request("p1"), request("p1", formulation="xr")
    await intake.handle(NOW, first)
    await intake.handle(NOW, second)
    assert triggers(intake, "p1") == ["request", "request"]
    assert on_file(intake, "p1") == second["id"]


async def test_a_repeat_is_not_decided_again(intake):
    envelope = request("p1")
    assert await intake.handle(NOW, envelope) == ["new"]
    assert await intake.handle(NOW, envelope) == ["repeat"]
    assert triggers(intake, "p1") == ["request"]


async def test_a_deferral_is_rechecked_on_its_earliest_start(intake):
    """Last use 2026-03-08 (heroin, 7-day window): deferred until 2026-03-15. On that
    day the same request is decided again (its screen is stale by then)."""
    envelope = request("p1", last_opioid_use={"date": "2026-03-08", "opioid": "heroin"})
    await intake.handle(NOW, envelope)
    [deferred] = await intake.published()
    assert deferred["type"] == "ntx.intake.deferred.v1"
    due = intake.timers("p1")["recheck"]
    assert due == datetime(2026, 3, 15, 4, 0, tzinfo=UTC)  # local midnight (EDT)
    assert await intake.fire(due - timedelta(seconds=1)) == 0
    assert await intake.fire(due) == 1
    [again] = await intake.published()
    assert again["data"]["as_of"] == "2026-03-15"
    codes = [r["code"] for r in again["data"]["reasons"]]
    assert codes == ["urine_screen_missing_or_stale"]
    assert again["id"] != deferred["id"]  # the re-check's own event
    assert triggers(intake, "p1") == ["request", "recheck"]
    assert intake.table("patients")["p1"][4] == "deferred"
    assert intake.timers("p1") == {}  # no dated start left: it waits for new input


async def test_a_recheck_of_a_superseded_request_does_nothing(intake):
    deferred = request("p1", last_opioid_use={"date": "2026-03-08", "opioid": "heroin"})
    await intake.handle(NOW, deferred)
    due = intake.timers("p1")["recheck"]
    # A newer request, deferred for another reason, that keeps a timer to the same day
    # would replace it; here the newer one is accepted, so the timer is cancelled.
    await intake.handle(NOW + timedelta(hours=1), request("p1", at=NOW + timedelta(hours=1)))
    assert intake.timers("p1") == {}
    assert await intake.fire(due) == 0
    assert triggers(intake, "p1") == ["request", "request"]


async def test_a_deferral_whose_earliest_start_is_today_sets_no_timer(intake):
    envelope = request("p1", naloxone_challenge={"date": "2026-03-09", "result": "positive"})
    await intake.handle(NOW, envelope)
    [deferred] = await intake.published()
    assert deferred["data"]["earliest_start_date"] == "2026-03-10"
    assert intake.timers("p1") == {}


async def test_a_refused_request_rolls_back_the_whole_unit(intake):
    """A screen dated after the evaluation date is an input error naming the field;
    nothing of the batch is kept (the runtime then redoes it one by one). The door
    refuses it first in the worker; the handler's own check is what is tested here."""
    good = request("p2")
    bad = request("p1", urine_drug_screen={"date": "2026-03-12", "opioids_detected": False})
    with pytest.raises(InvalidEvent) as refused:
        await intake.handle(NOW, good, bad, door=False)
    assert refused.value.field == "data.urine_drug_screen.date"
    assert intake.table("patients") == {} and intake.table("decisions") == {}
    assert await intake.published() == []
