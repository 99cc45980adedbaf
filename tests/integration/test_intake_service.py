"""Intake worker against the real broker and database on a simulated clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.intake.service import SPEC
from shared import db
from shared.clock import SimulatedClock
from shared.topics import DLQ, INTAKE_DECISIONS, INTAKE_REQUESTS
from tests.integration.builders import intake_request
from tests.integration.harness import Harness, eventually, patient_messages, produce, read_topic

pytestmark = pytest.mark.infra

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York


def request(patient: str, **changes) -> dict:
    return intake_request(patient, NOW, **changes)


async def send(infra, envelope: dict) -> None:
    await produce(
        infra.bootstrap,
        INTAKE_REQUESTS.name,
        envelope["subject"].encode(),
        json.dumps(envelope).encode(),
    )


async def decisions(infra, patient: str, n: int) -> list[dict]:
    return await patient_messages(infra.bootstrap, INTAKE_DECISIONS.name, patient, n)


async def audit_rows(infra, schema: str, patient: str) -> list:
    conn = await db.connect(infra.database_url, schema)
    try:
        return await conn.fetch(
            "SELECT * FROM decisions WHERE patient_id = $1 ORDER BY id", patient
        )
    finally:
        await conn.close()


async def test_accepted_request_publishes_plan_and_audits_once(infra, unique):
    patient = f"acc-{unique}"
    envelope = request(patient)
    async with Harness(SPEC, infra, f"intake_{unique}", clock=SimulatedClock(NOW)) as h:
        await send(infra, envelope)
        await send(infra, envelope)  # delivered twice
        assert await eventually(lambda: _settled(h, patient, 2))
        out = await decisions(infra, patient, 1)
        rows = await audit_rows(infra, f"intake_{unique}", patient)
    assert h.outcomes_for(patient) == ["handled", "repeat"]
    assert [e["type"] for e in out] == ["ntx.intake.accepted.v1"]
    decided = out[0]["data"]
    assert decided["plan"]["start_date"] == "2026-03-10"
    assert decided["plan"]["oral_regimen"] == "daily"
    assert out[0]["causationid"] == envelope["id"]
    assert len(rows) == 1 and rows[0]["request_source"] == "test/hs"
    assert rows[0]["ruleset_version"] == decided["ruleset_version"]


async def test_deferred_patient_is_rechecked_on_earliest_start(infra, unique):
    patient = f"def-{unique}"
    clock = SimulatedClock(NOW)
    # last use 5 days ago: the 7-day window ends on 2026-03-12
    envelope = request(patient, last_opioid_use={"date": "2026-03-05", "opioid": "heroin"})
    async with Harness(SPEC, infra, f"intake_{unique}", clock=clock) as h:
        await send(infra, envelope)
        first = await decisions(infra, patient, 1)
        assert first[0]["type"] == "ntx.intake.deferred.v1"
        assert first[0]["data"]["earliest_start_date"] == "2026-03-12"
        clock.set(datetime(2026, 3, 12, 5, 0, tzinfo=UTC))  # 00:00 New York (EST)
        out = await decisions(infra, patient, 2)
        rows = await audit_rows(infra, f"intake_{unique}", patient)
    assert [e["type"] for e in out] == ["ntx.intake.deferred.v1", "ntx.intake.accepted.v1"]
    assert out[1]["data"]["as_of"] == "2026-03-12"
    assert [r["trigger"] for r in rows] == ["request", "recheck"]
    assert h.outcomes_for(patient) == ["handled"]


async def test_future_dated_request_is_dead_lettered(infra, unique):
    patient = f"fut-{unique}"
    envelope = request(patient, last_opioid_use={"date": "2026-04-01", "opioid": "heroin"})
    async with Harness(SPEC, infra, f"intake_{unique}", clock=SimulatedClock(NOW)) as h:
        await send(infra, envelope)
        assert await eventually(lambda: _settled(h, patient, 1))
    letters = await read_topic(
        infra.bootstrap,
        DLQ.name,
        until=lambda ms: any(json.loads(m.value).get("key") == patient for m in ms),
    )
    mine = [json.loads(m.value) for m in letters if json.loads(m.value).get("key") == patient]
    assert mine[0]["field"] == "data.last_opioid_use.date"
    assert h.outcomes_for(patient) == ["dead"]


async def test_newer_request_supersedes_older(infra, unique):
    patient = f"sup-{unique}"
    newer = request(patient)
    older = request(patient, formulation="xr")
    older["time"] = "2026-03-09T15:00:00Z"
    async with Harness(SPEC, infra, f"intake_{unique}", clock=SimulatedClock(NOW)) as h:
        await send(infra, newer)
        await send(infra, older)
        assert await eventually(lambda: _settled(h, patient, 2))
        rows = await audit_rows(infra, f"intake_{unique}", patient)
    assert [r["trigger"] for r in rows] == ["request", "superseded"]
    out = await decisions(infra, patient, 1)
    assert len(out) == 1 and out[0]["data"]["plan"]["formulation"] == "oral"


async def test_override_is_audited_with_who_and_what(infra, unique):
    """DESIGN.md §4.1 r2: the overridden reason leaves the decision, its advisories
    say clinician_override, and the audit row records who overrode what."""
    patient = f"ovr-{unique}"
    override = {"by": "dr-7", "codes": ["pregnancy_clinician_review"]}
    envelope = request(patient, conditions=["pregnancy"], clinician_override=override)
    async with Harness(SPEC, infra, f"intake_{unique}", clock=SimulatedClock(NOW)) as h:
        await send(infra, envelope)
        out = await decisions(infra, patient, 1)
        assert await eventually(lambda: _settled(h, patient, 1))
        rows = await audit_rows(infra, f"intake_{unique}", patient)
    assert out[0]["type"] == "ntx.intake.accepted.v1"
    assert "clinician_override" in out[0]["data"]["advisories"]
    assert [(r["overridden_by"], r["overridden"]) for r in rows] == [
        ("dr-7", ["pregnancy_clinician_review"])
    ]


async def test_a_deferral_whose_earliest_start_is_today_is_not_rechecked_in_a_loop(infra, unique):
    """A positive challenge from yesterday: earliest start is today (never before
    as_of); evaluating the same request again today changes nothing, so no re-check
    timer is set (one would fire again and again)."""
    patient = f"nal-{unique}"
    envelope = request(patient, naloxone_challenge={"date": "2026-03-09", "result": "positive"})
    schema = f"intake_{unique}"
    async with Harness(SPEC, infra, schema, clock=SimulatedClock(NOW)) as h:
        await send(infra, envelope)
        out = await decisions(infra, patient, 1)
        assert await eventually(lambda: _settled(h, patient, 1))
        conn = await db.connect(infra.database_url, schema)
        try:
            timers = await conn.fetchval(
                "SELECT count(*) FROM timers WHERE patient_id = $1", patient
            )
        finally:
            await conn.close()
    assert out[0]["data"]["earliest_start_date"] == "2026-03-10"
    assert timers == 0


async def _settled(h: Harness, patient: str, n: int) -> bool:
    return len(h.outcomes_for(patient)) >= n
