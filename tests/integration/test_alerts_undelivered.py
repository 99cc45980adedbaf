"""DESIGN.md §4.3 r2 on the real broker and database: a critical alert none of whose
notifications could be delivered escalates at once, and asks again, once. The
outcomes arrive on ``ntx.deliveries.v1`` as the notifier publishes them."""

from __future__ import annotations

import pytest

from services.alerts.service import SPEC
from shared.clock import SimulatedClock
from shared.topics import ALERTS, NOTIFICATIONS
from tests.integration.builders import event, failed_outcome, send
from tests.integration.harness import Harness, eventually
from tests.integration.test_alerts_service import T0, _settled, audit, on_topic, plan_created

pytestmark = pytest.mark.infra


def stopped(patient: str) -> dict:
    return event("ntx.treatment.stopped.v1", T0, patient_id=patient, stopped_at=T0, reason="other")


async def test_a_critical_alert_whose_notifications_all_failed_escalates_once(infra, unique):
    patient, schema = f"undelivered-{unique}", f"alerts_{unique}"
    clock = SimulatedClock(T0)  # the 1 h escalation never comes due here
    async with Harness(SPEC, infra, schema, clock=clock) as h:
        await send(infra.bootstrap, plan_created(patient))
        # the plan first: its topic and the stop's are not ordered with each other
        assert await eventually(lambda: _settled(h, patient, 1))
        await send(infra.bootstrap, stopped(patient))
        first = await on_topic(infra, NOTIFICATIONS.name, patient, 2)
        outcomes = [failed_outcome(request, T0) for request in first]
        for outcome in [*outcomes, outcomes[0]]:  # the last one sent again: a repeat
            await send(infra.bootstrap, outcome)
        alerts = await on_topic(infra, ALERTS.name, patient, 2)
        notes = await on_topic(infra, NOTIFICATIONS.name, patient, 4)
        for request in notes[2:]:  # the second round fails too
            await send(infra.bootstrap, failed_outcome(request, T0))
        assert await eventually(lambda: _settled(h, patient, 7), timeout=90)
        rows = await audit(infra, schema, patient)
    assert h.outcomes_for(patient) == ["handled"] * 4 + ["repeat"] + ["handled"] * 2
    assert [(a["type"], a["data"]["reason"], a["data"]["severity"]) for a in alerts] == [
        ("ntx.alert.raised.v1", "discontinued", "critical"),
        ("ntx.alert.escalated.v1", "notifications_failed", "critical"),
    ]
    again = notes[2:]
    assert sorted(n["data"]["audience"] for n in again) == ["care_team", "patient"]
    assert {n["id"] for n in again}.isdisjoint({n["id"] for n in first})
    assert all(n["data"]["offer_naloxone"] for n in again)
    assert [r["type"] for r in rows].count("ntx.alert.escalated.v1") == 1  # never a loop
    assert len(rows) == 6  # raised + 2 requests, escalated + 2 requests
