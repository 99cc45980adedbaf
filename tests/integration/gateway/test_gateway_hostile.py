"""Hostile input to the running gateway: each refusal is an OperationOutcome with
its status and a FHIR path, nothing is written (outbox, identities, held results,
sent ids), and the gateway answers the next valid POST."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from services.gateway.domain.settings import DEFAULT_SETTINGS
from tests.integration.gateway.client import EXAMPLES, Gateway, event_ids, running_gateway

pytestmark = pytest.mark.infra

NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
TABLES = ("outbox", "patient_identifiers", "held_results", "sent_events")


@pytest.fixture(scope="module")
async def gateway(infra, tmp_path_factory):
    logs = tmp_path_factory.mktemp("gwhostile")
    async with running_gateway(infra, logs, f"gh{logs.name[-6:].lower()}_", NOW) as gw:
        yield gw


def administration(n: int, **changes) -> bytes:
    """The XR example as a new resource (its own id), with ``changes`` applied."""
    data = json.loads((EXAMPLES / "medication_administration_xr.json").read_bytes())
    data["id"] = f"ma-hostile-{n}"
    data["subject"]["identifier"]["value"] = f"MRN-H-{n}"
    data.update(changes)
    return json.dumps(data).encode()


def huge_batch() -> bytes:
    entry = json.loads(administration(0))
    entries = [{"resource": entry} for _ in range(DEFAULT_SETTINGS.max_bundle_entries + 1)]
    return json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}).encode()


UNKNOWN_CODE = {
    "medicationCodeableConcept": {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "999999"}]
    }
}

CASES = {
    "malformed JSON": ("/fhir/MedicationAdministration", b'{"resourceType": ', {}, 400, "$"),
    "not FHIR": (
        "/fhir/MedicationAdministration",
        json.dumps({"resourceType": "MedicationAdministration", "status": 7}).encode(),
        {},
        400,
        "MedicationAdministration",
    ),
    "wrong resource type": ("/fhir/Observation", administration(1), {}, 400, "resourceType"),
    "a resource to /fhir": ("/fhir", administration(2), {}, 400, "resourceType"),
    "unknown code": (
        "/fhir/MedicationAdministration",
        administration(3, **UNKNOWN_CODE),
        {},
        422,
        "MedicationAdministration.medication",
    ),
    "over the entry bound": ("/fhir", huge_batch(), {}, 413, "Bundle"),
    "over the size bound": (
        "/fhir/MedicationAdministration",
        b" " * (DEFAULT_SETTINGS.max_document_bytes + 1),
        {},
        413,
        "$",
    ),
    "wrong content type": (
        "/fhir/MedicationAdministration",
        administration(4),
        {"content_type": "text/plain"},
        415,
        "Content-Type",
    ),
    "no token": (
        "/fhir/MedicationAdministration",
        administration(5),
        {"token": None},
        401,
        "Authorization",
    ),
    "bad token": (
        "/fhir/MedicationAdministration",
        administration(6),
        {"token": "not-a-client"},
        401,
        "Authorization",
    ),
    "out of scope": (
        "/fhir/MedicationAdministration",
        administration(7),
        {"token": "lab"},
        403,
        "resourceType",
    ),
}


async def written(gw: Gateway) -> dict[str, int]:
    return {t: await gw.count(f"SELECT count(*) FROM {t}") for t in TABLES}


@pytest.mark.parametrize("case", CASES)
async def test_hostile_input_is_refused_whole_and_the_next_post_is_taken(gateway, case):
    path, body, options, status, where = CASES[case]
    if options.get("token") == "lab":
        options = {**options, "token": gateway.lab_token}
    before = await written(gateway)

    got, answer, headers = await asyncio.to_thread(gateway.post, path, body, **options)

    assert got == status, answer
    assert answer["resourceType"] == "OperationOutcome"
    assert answer["issue"] and all(i["severity"] in ("error", "fatal") for i in answer["issue"])
    assert any(e.startswith(where) for i in answer["issue"] for e in i["expression"]), answer
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")
    if status == 403:
        assert "MedicationAdministration" in answer["issue"][0]["diagnostics"]
    assert await written(gateway) == before
    n = 100 + list(CASES).index(case)
    ok, accepted, _ = await asyncio.to_thread(
        gateway.post, "/fhir/MedicationAdministration", administration(n)
    )
    assert ok == 201 and len(event_ids(accepted)) == 1


async def test_a_transaction_with_one_bad_entry_writes_nothing(gateway):
    good, bad = json.loads(administration(200)), json.loads(administration(201, **UNKNOWN_CODE))
    body = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": good}, {"resource": bad}],
    }
    before = await written(gateway)
    got, answer, _ = await asyncio.to_thread(gateway.post, "/fhir", json.dumps(body).encode())
    assert got == 422 and answer["resourceType"] == "OperationOutcome"
    assert any(e.startswith("Bundle.entry[1]") for i in answer["issue"] for e in i["expression"])
    assert await written(gateway) == before


async def test_a_batch_keeps_its_good_entries_and_answers_each(gateway):
    good, bad = json.loads(administration(300)), json.loads(administration(301, **UNKNOWN_CODE))
    body = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": good}, {"resource": bad}],
    }
    got, answer, _ = await asyncio.to_thread(gateway.post, "/fhir", json.dumps(body).encode())
    assert got == 200 and answer["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity"]
    assert len(event_ids(answer["entry"][0]["response"]["outcome"])) == 1
    assert event_ids(answer["entry"][1]["response"]["outcome"]) == []
