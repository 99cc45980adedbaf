"""Lone liver results through the running gateway: an ALT alone is held (200, a
note, no event) and paired with its AST sent later into one ``lab.resulted``; one
still alone after the wait (the gateway's clock moved 8 days) is dead-lettered with
its FHIR path, its value nowhere in the letter, and no longer held. A half sent
again after its pair went out is not held again."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FileClock
from shared.topics import CLINICAL_EVENTS, DLQ
from tests.integration.gateway.client import EXAMPLES, Gateway, event_ids
from tests.integration.harness import eventually, read_topic

pytestmark = pytest.mark.infra

NOW = datetime(2026, 11, 18, 14, 0, tzinfo=UTC)


def result(analyte: str, mrn: str) -> bytes:
    """The liver panel's ALT or AST as a resource of its own, for patient ``mrn``."""
    panel = json.loads((EXAMPLES / "liver_panel.json").read_bytes())
    observation = panel["entry"][2 if analyte == "alt" else 3]["resource"]
    observation["id"] = f"{analyte}-{mrn}"
    observation["meta"] = {"versionId": "1"}
    observation["subject"] = {
        "identifier": {"system": "https://hospital.example.org/fhir/sid/mrn", "value": mrn}
    }
    return json.dumps(observation).encode()


@pytest.fixture
async def gateway(infra, tmp_path, unique):
    clock = FileClock(tmp_path / "clock")
    clock.set(NOW)
    gw = Gateway(infra, f"gl{unique}_", tmp_path / "gateway.log", clock)
    gw.proc.env["NTX_HOUSEKEEPING_EVERY_S"] = "0.2"
    gw.proc.start()
    try:
        await gw.proc.wait_healthy()
        yield gw, clock
    finally:
        gw.proc.kill()


async def test_a_lone_alt_is_held_then_paired_then_a_lone_one_is_reported(gateway, infra, unique):
    gw, clock = gateway
    held, note, _ = await asyncio.to_thread(
        gw.post, "/fhir/Observation", result("alt", f"A{unique}")
    )
    assert held == 200 and event_ids(note) == []
    assert any(i["code"] == "incomplete" and "held" in i["diagnostics"] for i in note["issue"])
    paired, answer, _ = await asyncio.to_thread(
        gw.post, "/fhir/Observation", result("ast", f"A{unique}")
    )
    assert paired == 201
    [lab_id] = event_ids(answer)
    msgs = await read_topic(
        infra.bootstrap,
        CLINICAL_EVENTS.name,
        until=lambda ms: any(json.loads(m.value)["id"] == lab_id for m in ms),
    )
    [lab] = [e for m in msgs if (e := json.loads(m.value))["id"] == lab_id]
    assert lab["type"] == "ntx.lab.resulted.v1" and lab["data"]["alt"] == 120.3

    resent, repeat, _ = await asyncio.to_thread(
        gw.post, "/fhir/Observation", result("alt", f"A{unique}")
    )
    assert resent == 200 and event_ids(repeat) == []
    assert await gw.count("SELECT count(*) FROM held_results") == 0

    lone, _, _ = await asyncio.to_thread(gw.post, "/fhir/Observation", result("alt", f"B{unique}"))
    assert lone == 200 and await gw.count("SELECT count(*) FROM held_results") == 1
    clock.set(NOW + timedelta(days=8))
    assert await eventually(lambda: _letters(gw), timeout=30)
    assert await gw.count("SELECT count(*) FROM held_results") == 0
    letters = await read_topic(
        infra.bootstrap,
        DLQ.name,
        until=lambda ms: any(
            json.loads(m.value)["service"] == "gateway"
            and f"gl{unique}_" in json.loads(m.value)["ref"]
            for m in ms
        ),
    )
    [letter] = [
        e for m in letters if (e := json.loads(m.value))["ref"].startswith(f"gl{unique}_gateway.")
    ]
    assert letter["field"] == "Observation" and "had no AST within 7 days" in letter["reason"]
    assert "120.3" not in json.dumps(letter)


async def _letters(gw: Gateway) -> bool:
    return await gw.count("SELECT count(*) FROM dead_letters") == 1
