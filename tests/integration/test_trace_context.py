"""W3C trace context from cause to effect through the outbox (DESIGN.md §3 [r2], §10):
intake, scheduler and alerts on the real broker and database, one simulated clock.

A traced intake request's trace id reaches the decision, the plan the scheduler
makes of it and the alerts service's handling of that plan, each effect with a span
id of its own; every service's log names the trace; and a traced stop of the same
workflow raises an alert that carries the trace too."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from services.alerts.service import SPEC as ALERTS_SPEC
from services.intake.service import SPEC as INTAKE_SPEC
from services.scheduler.service import SPEC as SCHEDULER_SPEC
from shared.clock import SimulatedClock
from shared.topics import ALERTS, INTAKE_DECISIONS, SCHEDULE
from tests.integration.builders import event, send
from tests.integration.harness import Harness, eventually, patient_messages
from tests.integration.test_intake_service import NOW, request

pytestmark = pytest.mark.infra

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
REQUEST_SPAN = "b7ad6b7169203331"
STOP_SPAN = "c7ad6b7169203332"


def traced(envelope: dict, span: str) -> dict:
    return {**envelope, "traceparent": f"00-{TRACE_ID}-{span}-01", "tracestate": "ehr=order-7"}


def trace_of(envelope: dict) -> tuple[str, str]:
    _, trace_id, span_id, _ = envelope["traceparent"].split("-")
    return trace_id, span_id


async def test_one_trace_through_intake_scheduler_and_alerts(infra, unique, caplog):
    caplog.set_level(logging.INFO, logger="ntx.runtime")
    patient, clock = f"trace-{unique}", SimulatedClock(NOW)
    services = [
        Harness(spec, infra, f"{spec.name}_{unique}", clock=clock)
        for spec in (INTAKE_SPEC, SCHEDULER_SPEC, ALERTS_SPEC)
    ]
    for harness in services:
        await harness.__aenter__()
    try:
        await send(infra.bootstrap, traced(request(patient), REQUEST_SPAN))
        decision = (await patient_messages(infra.bootstrap, INTAKE_DECISIONS.name, patient, 1))[0]
        schedule = await patient_messages(infra.bootstrap, SCHEDULE.name, patient, 1)
        alerts = services[2]
        # a fresh alerts group reads its three topics from their start: in a whole run,
        # every earlier test's schedule, clinical and delivery events come first
        assert await eventually(lambda: _async(bool(alerts.outcomes_for(patient))), timeout=300)
        stop = event(
            "ntx.treatment.stopped.v1",
            NOW,
            patient_id=patient,
            stopped_at=(NOW - timedelta(minutes=1)).isoformat(),
            reason="patient_choice",
        )
        await send(infra.bootstrap, traced(stop, STOP_SPAN))
        raised = (await patient_messages(infra.bootstrap, ALERTS.name, patient, 1))[0]
    finally:
        for harness in reversed(services):
            await harness.__aexit__(None, None, None)

    plan = next(e for e in schedule if e["type"] == "ntx.plan.created.v1")
    assert decision["type"] == "ntx.intake.accepted.v1"
    for effect in (decision, plan, raised):
        trace_id, span_id = trace_of(effect)
        assert trace_id == TRACE_ID, effect["type"]
        assert span_id not in (REQUEST_SPAN, STOP_SPAN), effect["type"]
        assert effect["tracestate"] == "ehr=order-7"
    assert trace_of(plan)[1] != trace_of(decision)[1]  # the scheduler's own span
    assert raised["data"]["alert"] == "overdose_risk"

    logged = {
        r.service
        for r in caplog.records
        if r.getMessage() in ("handled", "handled traces")
        and TRACE_ID in getattr(r, "trace_ids", "")
    }
    assert logged >= {"intake", "scheduler", "alerts"}


async def _async(value):
    return value
