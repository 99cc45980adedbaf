"""Builders of valid CloudEvents for integration tests."""

from __future__ import annotations

import json
from datetime import date, datetime

from shared.envelope import build
from shared.events import IntakeDecided, IntakeRequested, NotificationOutcome, TreatmentPlan
from shared.topics import event_type
from tests.integration.harness import produce


def plan(patient: str, start: date, **changes) -> TreatmentPlan:
    fields = {
        "patient_id": patient,
        "timezone": "America/New_York",
        "formulation": "oral",
        "oral_regimen": "daily",
        "induction_days": 1,
        "dose_time": "09:00",
        "start_date": start.isoformat(),
    }
    fields.update(changes)
    return TreatmentPlan.model_validate_json(json.dumps(fields))


def intake_request(patient: str, at: datetime, **changes) -> dict:
    """A request (New York) that the rules accept on 2026-03-10, unless changed."""
    data = {
        "patient_id": patient,
        "timezone": "America/New_York",
        "formulation": "oral",
        "last_opioid_use": {"date": "2026-03-01", "opioid": "heroin"},
        "urine_drug_screen": {"date": "2026-03-09", "opioids_detected": False},
        "naloxone_challenge": {"date": "2026-03-09", "result": "negative"},
        "liver_function": {
            "date": "2026-03-01",
            "alt": 30,
            "ast": 30,
            "alt_uln": 40,
            "ast_uln": 40,
        },
    }
    data.update(changes)
    model = IntakeRequested.model_validate_json(json.dumps(data))
    return build("ntx.intake.requested.v1", model, source="test/hs", time=at)


def accepted(p: TreatmentPlan, at: datetime) -> dict:
    decided = IntakeDecided(
        patient_id=p.patient_id,
        decision="accepted",
        reasons=[],
        earliest_start_date=None,
        advisories=["naloxone_kit_recommended"],
        plan=p,
        as_of=p.start_date,
        ruleset_version="test",
    )
    return build("ntx.intake.accepted.v1", decided, source="ntx/intake", time=at)


def event(type_: str, at: datetime, **data) -> dict:
    model = event_type(type_).model.model_validate_json(json.dumps(data, default=str))
    return build(type_, model, source="test/hs", time=at)


async def send(bootstrap: str, envelope: dict) -> None:
    topic = event_type(envelope["type"]).topic.name
    await produce(bootstrap, topic, envelope["subject"].encode(), json.dumps(envelope).encode())


def failed_outcome(request: dict, at: datetime) -> dict:
    """``notification.failed`` for a request, as the notifier publishes it when no
    endpoint is configured for the request's audience."""
    d = request["data"]
    outcome = NotificationOutcome(
        patient_id=d["patient_id"],
        notification_id=request["id"],
        alert_id=d["alert_id"],
        audience=d["audience"],
        endpoint=None,
        attempts=0,
        status="no_endpoint",
    )
    return build("ntx.notification.failed.v1", outcome, source="ntx/notifier", time=at)
