"""The alerts handlers on the in-memory unit of work: the outcome at a deadline
instant (an input stamped exactly at it is on time), a deadline passed before the
input arrives, repeats, escalation, and a patient adopted without a plan seen. No
broker, no database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from services.alerts.repository import MemoryAlertStates
from services.alerts.service import SPEC
from shared.envelope import InvalidEvent, build
from shared.ingress import check
from tests.integration.builders import event, failed_outcome, plan
from tests.unit.in_memory import InMemoryService

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 New York
MISSED_AFTER = timedelta(hours=12)  # DESIGN.md §4.3: an oral dose not recorded in 12 h


@pytest.fixture
def alerts() -> InMemoryService:
    return InMemoryService(SPEC, MemoryAlertStates)


def plan_created(patient: str) -> dict:
    p = plan(patient, date(2026, 3, 2), consent={"notify_patient": True})
    return build("ntx.plan.created.v1", p, source="ntx/scheduler", time=T0)


def dose_due(patient: str) -> dict:
    return event(
        "ntx.dose.due.v1",
        T0,
        patient_id=patient,
        due_utc=DUE.isoformat(),
        due_local="2026-03-02T09:00",
        dose_mg=25,
    )


def given(patient: str, at: datetime) -> dict:
    return event("ntx.dose.administered.v1", at, patient_id=patient, administered_at=at, dose_mg=25)


def changes(events: list[dict]) -> list[tuple[str, str, str]]:
    """(type, alert, time) of each alert event."""
    return [
        (e["type"].split(".")[2], e["data"]["alert"], e["time"])
        for e in events
        if e["type"].startswith("ntx.alert.")
    ]


async def planned_dose(alerts: InMemoryService) -> None:
    await alerts.handle(T0, plan_created("p1"), dose_due("p1"))
    assert await alerts.published() == []


async def test_a_dose_recorded_exactly_at_the_deadline_is_on_time(alerts):
    await planned_dose(alerts)
    deadline = DUE + MISSED_AFTER
    assert alerts.timers("p1")["missed:dose:2026-03-02T14:00:00Z"] == deadline
    await alerts.handle(deadline, given("p1", deadline))
    assert changes(await alerts.published()) == []
    assert await alerts.fire(deadline) == 0  # the deadline went with the dose


async def test_a_dose_recorded_a_second_late_comes_after_the_alert(alerts):
    """The deadline fires before the input (it was due strictly earlier), at its own
    moment's unit: raised, then resolved by the dose, both in this unit."""
    await planned_dose(alerts)
    late = DUE + MISSED_AFTER + timedelta(seconds=1)
    await alerts.handle(late, given("p1", late))
    moments = changes(await alerts.published())
    assert [(kind, alert) for kind, alert, _ in moments] == [
        ("raised", "missed_dose"),
        ("resolved", "missed_dose"),
    ]


async def test_the_deadline_fires_on_its_own_at_its_moment(alerts):
    await planned_dose(alerts)
    assert await alerts.fire(DUE + MISSED_AFTER - timedelta(seconds=1)) == 0
    assert await alerts.fire(DUE + MISSED_AFTER) == 1
    out = await alerts.published()
    assert changes(out) == [("raised", "missed_dose", "2026-03-03T02:00:00Z")]
    audiences = sorted(e["data"]["audience"] for e in out if "audience" in e["data"])
    assert audiences == ["care_team", "patient"]  # consent.notify_patient
    audited = [r.type for r in alerts.table("alert_audit").values()]
    assert audited.count("ntx.alert.raised.v1") == 1


async def test_a_repeated_input_raises_nothing_twice(alerts):
    await planned_dose(alerts)
    stop = event(
        "ntx.treatment.stopped.v1", T0, patient_id="p1", stopped_at=T0, reason="patient_choice"
    )
    assert await alerts.handle(T0, stop) == ["new"]
    assert await alerts.handle(T0, stop) == ["repeat"]
    assert changes(await alerts.published()) == [
        ("raised", "overdose_risk", "2026-03-02T12:00:00Z")
    ]


async def test_a_dose_due_for_an_unknown_patient_adopts_it(alerts):
    await alerts.handle(T0, dose_due("p7"))
    assert "p7" in alerts.table("patient_state")
    assert await alerts.fire(DUE + MISSED_AFTER) == 1
    out = await alerts.published()
    assert changes(out) == [("raised", "missed_dose", "2026-03-03T02:00:00Z")]
    assert [e["data"]["audience"] for e in out if "audience" in e["data"]] == ["care_team"]


async def test_a_failing_unit_leaves_the_state_as_it_was(alerts):
    await planned_dose(alerts)
    before = dict(alerts.table("patient_state"))
    with pytest.raises(RuntimeError):
        async with alerts.units.begin(T0) as uow:
            await SPEC.handle(uow, [alerts_event(given("p1", T0))])
            assert alerts.table("patient_state") != before  # written, not committed
            raise RuntimeError("a defect mid-unit")
    assert alerts.table("patient_state") == before
    assert await alerts.published() == []


def alerts_event(envelope: dict):
    return check(json.dumps(envelope).encode(), T0)


async def test_failed_notifications_of_a_critical_alert_escalate_it_once(alerts):
    stop = event("ntx.treatment.stopped.v1", T0, patient_id="p1", stopped_at=T0, reason="other")
    await alerts.handle(T0, plan_created("p1"), stop)
    first = [e for e in await alerts.published() if "audience" in e["data"]]
    outcomes = [failed_outcome(r, T0) for r in first]
    assert await alerts.handle(T0, *outcomes) == ["new", "new"]
    assert await alerts.handle(T0, outcomes[0]) == ["repeat"]
    again = await alerts.published()
    assert [(e["type"], e["data"].get("reason")) for e in again if "reason" in e["data"]] == [
        ("ntx.alert.escalated.v1", "notifications_failed")
    ]
    second = [e for e in again if "audience" in e["data"]]
    assert sorted(e["data"]["audience"] for e in second) == ["care_team", "patient"]
    await alerts.handle(T0, *(failed_outcome(r, T0) for r in second))
    assert await alerts.published() == []  # once per alert: the second round adds nothing


@pytest.mark.parametrize(
    "field, value", [("status", "unplugged"), ("attempts", 10**400)], ids=["status", "attempts"]
)
def test_a_malformed_outcome_is_refused_at_the_door_naming_the_field(field, value):
    request = {
        "id": "n-1",
        "data": {"patient_id": "p1", "alert_id": "a-1", "audience": "care_team"},
    }
    bad = failed_outcome(request, T0)
    bad["data"][field] = value
    with pytest.raises(InvalidEvent) as refused:
        check(json.dumps(bad).encode(), T0)
    assert refused.value.field.startswith(f"data.{field}")
