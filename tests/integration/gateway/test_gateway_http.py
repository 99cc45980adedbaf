"""The gateway as operators run it (``ntx service gateway``, its own process and
schema) on the real broker and database: each example of ``examples/fhir/`` POSTed
over HTTP becomes the events ``ntx fhir translate`` prints (ids aside), on their
topics; the same POST again writes none and answers the same ids."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from services.gateway.domain.cds import SERVICE_ID
from services.gateway.domain.translate import translate
from services.gateway.repository import in_memory
from shared.topics import event_type
from tests.integration.gateway.client import EXAMPLES, event_ids, running_gateway
from tests.integration.harness import read_topic

pytestmark = pytest.mark.infra

SINGLE = [
    "medication_administration_xr.json",
    "medication_administration_not_done.json",
    "planned_surgery.json",
    "treatment_stopped.json",
]
#: The examples' day (examples/fhir/README.md: the CDS requests are for 2026-11-24..26).
NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
BUNDLES = [
    "urine_screen.json",
    "liver_panel.json",
    "intake_bundle.json",
    "subscription_notification.json",
]


@pytest.fixture(scope="module")
async def gateway(infra, tmp_path_factory):
    unique = tmp_path_factory.mktemp("gw").name.replace("-", "_").lower()[-8:]
    logs = tmp_path_factory.mktemp("gwlog")
    async with running_gateway(infra, logs, f"gw{unique}_", NOW) as gw:
        yield gw


async def expected(name: str) -> list[dict]:
    """What ``ntx fhir translate`` prints for the file (the same domain, in memory)."""
    result = await translate((EXAMPLES / name).read_bytes(), in_memory().translation, NOW)
    return result.events


def meaning(event: dict) -> tuple[str, dict]:
    return event["type"], {k: v for k, v in event["data"].items() if k != "patient_id"}


async def on_topics(bootstrap: str, events_by_id: dict[str, str]) -> dict[str, dict]:
    """The published events with these ids, read from their topics."""
    found: dict[str, dict] = {}
    for topic in {event_type(t).topic.name for t in events_by_id.values()}:
        wanted = {i for i, t in events_by_id.items() if event_type(t).topic.name == topic}
        msgs = await read_topic(
            bootstrap,
            topic,
            until=lambda ms, wanted=wanted: {json.loads(m.value)["id"] for m in ms} >= wanted,
            timeout=60,
        )
        for m in msgs:
            event = json.loads(m.value)
            if event["id"] in events_by_id:
                found.setdefault(event["id"], event)
    return found


@pytest.mark.parametrize("name", SINGLE + BUNDLES)
async def test_each_example_becomes_the_events_translate_prints_once(gateway, infra, name):
    body = (EXAMPLES / name).read_bytes()
    path = "/fhir" if name in BUNDLES else f"/fhir/{json.loads(body)['resourceType']}"
    status, answer, headers = await asyncio.to_thread(gateway.post, path, body)
    assert status == (200 if name in BUNDLES else 201), answer
    assert headers["Content-Type"].startswith("application/fhir+json")
    ids = event_ids(answer)
    want = await expected(name)
    assert len(ids) == len(want) >= 1
    published = await on_topics(
        infra.bootstrap, {i: e["type"] for i, e in zip(ids, want, strict=True)}
    )
    assert sorted(meaning(e) for e in published.values()) == sorted(meaning(e) for e in want)
    assert all(e["source"] == "ntx/gateway" for e in published.values())
    before = await gateway.outbox_ids()

    again, repeat, _ = await asyncio.to_thread(gateway.post, path, body)

    assert again == 200 and event_ids(repeat) == ids
    assert await gateway.outbox_ids() == before
    assert all(before.count(i) == 1 for i in ids)


async def test_one_patient_keeps_one_pseudonym_and_no_identifier_leaves(gateway, infra):
    outbox = "SELECT count(*) FROM outbox WHERE position($1 in convert_from(value, 'UTF8')) > 0"
    assert await gateway.count(outbox, "MRN-000123") == 0
    mapped = "SELECT count(DISTINCT patient_id) FROM patient_identifiers WHERE value = $1"
    assert await gateway.count(mapped, "MRN-000123") == 1


def test_metadata_is_a_capability_statement_of_what_is_accepted(gateway):
    status, body, _ = gateway.get("/fhir/metadata")
    assert status == 200 and body["resourceType"] == "CapabilityStatement"
    [rest] = body["rest"]
    types = {r["type"] for r in rest["resource"]}
    assert {"MedicationAdministration", "Observation", "Procedure", "Patient"} <= types
    assert {i["code"] for i in rest["interaction"]} == {"batch", "transaction"}
    assert "Bearer" in rest["security"]["description"]


def test_cds_discovery_and_order_sign_answer_the_three_card_kinds(gateway):
    status, found, _ = gateway.get("/cds-services")
    assert status == 200 and [s["id"] for s in found["services"]] == [SERVICE_ID]
    indicators = {}
    for kind in ("accepted", "deferred", "rejected"):
        body = (EXAMPLES / "cds" / f"order_sign_{kind}.json").read_bytes()
        status, cards, _ = gateway.post(
            f"/cds-services/{SERVICE_ID}",
            body,
            token=gateway.cds_token,
            content_type="application/json",
        )
        assert status == 200, cards
        indicators[kind] = {c["indicator"] for c in cards["cards"]}
    assert indicators["rejected"] == {"critical"}
    assert "warning" in indicators["deferred"]
    assert indicators["accepted"] == {"info"}
    body = (EXAMPLES / "cds" / "order_sign_accepted.json").read_bytes()
    assert gateway.post(f"/cds-services/{SERVICE_ID}", body, token=None)[0] == 401
    assert gateway.post(f"/cds-services/{SERVICE_ID}", body, token=gateway.lab_token)[0] == 403


async def test_first_posts_for_a_new_patient_at_once_mint_one_pseudonym(gateway):
    def administration(n: int) -> bytes:
        data = json.loads((EXAMPLES / "medication_administration_xr.json").read_bytes())
        data["id"] = f"ma-concurrent-{n}"
        data["subject"]["identifier"]["value"] = "MRN-CONCURRENT"
        return json.dumps(data).encode()

    answers = await asyncio.gather(
        *(
            asyncio.to_thread(gateway.post, "/fhir/MedicationAdministration", administration(n))
            for n in range(6)
        )
    )
    assert [status for status, _, _ in answers] == [201] * 6
    ids = [i for _, answer, _ in answers for i in event_ids(answer)]
    pseudonyms = (
        "SELECT count(DISTINCT convert_from(value, 'UTF8')::json->'data'->>'patient_id')"
        " FROM outbox WHERE convert_from(value, 'UTF8')::json->>'id' = ANY($1::text[])"
    )
    assert len(ids) == 6 and await gateway.count(pseudonyms, ids) == 1
    mapped = "SELECT count(DISTINCT patient_id) FROM patient_identifiers WHERE value = $1"
    assert await gateway.count(mapped, "MRN-CONCURRENT") == 1


def test_the_log_and_metrics_carry_no_token_identifier_or_value(gateway):
    status, text = gateway.proc.call("/metrics")
    assert status == 200 and 'ntx_gateway_requests_total{route="fhir",status="201"}' in text
    log = gateway.proc.log.read_text()
    for secret in (gateway.token, gateway.lab_token, "MRN-000123", "MRN-CONCURRENT"):
        assert secret not in log and secret not in text
