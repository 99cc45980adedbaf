"""Endpoints, requests and secrets for the notifier's tests."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notifier.domain.endpoints import Endpoint, new_secret
from shared import events as ev

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def endpoint(name: str = "care-team-pager", **kw: object) -> Endpoint:
    fields: dict[str, object] = {
        "name": name,
        "url": "http://127.0.0.1:9/hooks/" + name,
        "audience": "care_team",
        "secret": new_secret(),
    }
    fields.update(kw)
    return Endpoint.model_validate(fields)


def request(**kw: object) -> ev.NotificationRequested:
    fields: dict[str, object] = {
        "patient_id": "pt-0042",
        "alert_id": "a-1",
        "alert": "overdose_risk",
        "severity": "critical",
        "audience": "care_team",
        "offer_naloxone": True,
    }
    fields.update(kw)
    return ev.NotificationRequested.model_validate(fields)
