"""What the gateway answers an accepted request, as FHIR R4 JSON built through the
``fhir.resources`` models (so it is valid FHIR).

* A single resource: an ``OperationOutcome`` with the domain's notes and one
  information issue per NTX event, its id in ``details.coding`` (system
  :data:`EVENT_SYSTEM`, code the event id, display the event type). 201 when an
  event was written now; 200 when every event had been written before (the same
  resource again) or none was due (a lone lab result held).
* A Bundle: a ``transaction-response`` (transaction, collection) or
  ``batch-response`` (batch, subscription notification) with one entry per
  request entry, each with its status and an ``OperationOutcome`` of its own
  issues and events."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from services.gateway.domain.outcome import Issue
from services.gateway.domain.translate import Translation

EVENT_SYSTEM = "urn:ntx:event-id"
CREATED, REPEATED, REFUSED = "201 Created", "200 OK", "422 Unprocessable Entity"


def outcome(issues: list[Issue], events: list[dict[str, Any]], fresh: set[str]) -> dict[str, Any]:
    listed: list[dict[str, Any]] = [
        {
            "severity": i.severity,
            "code": i.code,
            "diagnostics": i.message,
            "expression": [i.expression],
        }
        for i in issues
    ]
    listed += [_event_issue(e, e["id"] in fresh) for e in events]
    if not listed:
        listed = [{"severity": "information", "code": "informational", "diagnostics": "accepted"}]
    model = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": listed})
    return model.model_dump(mode="json", exclude_none=True)


def _event_issue(event: dict[str, Any], fresh: bool) -> dict[str, Any]:
    said = "sent as" if fresh else "already sent as (not sent again)"
    return {
        "severity": "information",
        "code": "informational",
        "diagnostics": f"{said} {event['type']} {event['id']}",
        "details": {
            "coding": [{"system": EVENT_SYSTEM, "code": event["id"], "display": event["type"]}]
        },
    }


def single(result: Translation, fresh: set[str]) -> tuple[int, dict[str, Any]]:
    return (201 if fresh else 200), outcome(result.issues, result.events, fresh)


def bundle(data: dict[str, Any], result: Translation, fresh: set[str]) -> dict[str, Any]:
    """One response entry per request entry; an issue or event is the entry's whose
    FHIR path lies inside it (anything else, e.g. the notification's status, is
    reported on the first entry)."""
    count = max(len(data.get("entry") or []), 1)  # an empty Bundle still gets its notes
    kind = "transaction-response" if data.get("type") in ("transaction", "collection") else None
    issues: list[list[Issue]] = [[] for _ in range(count)]
    events: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for issue in result.issues:
        issues[_entry(issue.expression, count)].append(issue)
    for event, path in zip(result.events, result.paths, strict=True):
        events[_entry(path, count)].append(event)
    entries = [
        {
            "response": {
                "status": _status(issues[i], events[i], fresh),
                "outcome": outcome(issues[i], events[i], fresh),
            }
        }
        for i in range(count)
    ]
    model = Bundle.model_validate(
        {"resourceType": "Bundle", "type": kind or "batch-response", "entry": entries}
    )
    return model.model_dump(mode="json", exclude_none=True)


def _entry(path: str, count: int) -> int:
    for i in range(count):
        prefix = f"Bundle.entry[{i}]"
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return i
    return 0


def _status(issues: list[Issue], events: list[dict[str, Any]], fresh: set[str]) -> str:
    if any(i.is_error for i in issues):
        return REFUSED
    return CREATED if any(e["id"] in fresh for e in events) else REPEATED
