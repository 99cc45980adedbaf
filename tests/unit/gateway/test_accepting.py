"""One FHIR call on in-memory units of work: checks before anything is touched,
then one unit that writes the new events only (the same resource again answers
the same ids and writes none)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from services.gateway.accepting import Answer, Call, accept, check_call, resource_types
from services.gateway.answers import EVENT_SYSTEM
from services.gateway.clients import Client, new_token
from services.gateway.repository import in_memory
from shared.memory import MemoryUnits

EXAMPLES = Path(__file__).parents[3] / "examples" / "fhir"
NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
TOKEN, DIGEST = new_token()
CLIENTS = (Client(name="ehr", token_sha256=DIGEST, scopes=("*",)),)


def call(name: str, kind: str | None) -> Call:
    return Call(f"Bearer {TOKEN}", "application/fhir+json", kind, (EXAMPLES / name).read_bytes())


def ids(answer: Answer) -> list[str]:
    def of(outcome: dict) -> list[str]:
        return [
            c["code"]
            for i in outcome["issue"]
            for c in i.get("details", {}).get("coding", [])
            if c["system"] == EVENT_SYSTEM
        ]

    if answer.body["resourceType"] == "Bundle":
        return [i for e in answer.body["entry"] for i in of(e["response"]["outcome"])]
    return of(answer.body)


async def test_an_event_is_written_once_and_answered_twice():
    repos = in_memory()
    units = MemoryUnits("ntx/gateway", lambda uow: repos)
    first_call = call("medication_administration_xr.json", "MedicationAdministration")
    checked = check_call(CLIENTS, first_call)
    assert not isinstance(checked, Answer)
    first = await accept(units.begin, checked[1], first_call, NOW)
    again = await accept(units.begin, checked[1], first_call, NOW)
    assert (first.status, again.status) == (201, 200)
    assert ids(first) == ids(again) and len(ids(first)) == 1
    assert (first.written, again.written) == (1, 0)
    assert [json.loads(r.value)["id"] for r in units.store.tables.outbox.values()] == ids(first)


async def test_a_transaction_bundle_answers_a_transaction_response():
    repos = in_memory()
    units = MemoryUnits("ntx/gateway", lambda uow: repos)
    bundle = call("liver_panel.json", None)
    checked = check_call(CLIENTS, bundle)
    assert not isinstance(checked, Answer)
    answer = await accept(units.begin, checked[1], bundle, NOW)
    assert answer.status == 200 and answer.body["type"] == "transaction-response"
    assert len(answer.body["entry"]) == len(checked[1]["entry"])
    assert len(ids(answer)) == 1


def test_the_types_a_bundle_carries_are_its_entries_not_the_bundle():
    data = json.loads((EXAMPLES / "intake_bundle.json").read_bytes())
    found = set(resource_types(data))
    assert "Bundle" not in found and {"Patient", "MedicationRequest"} <= found
