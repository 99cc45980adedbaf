"""``ntx dlq list`` and ``ntx dlq replay``: an operator sees a dead letter and re-submits
it, as it was or corrected, to its original topic."""

from __future__ import annotations

import json

import pytest

from services.bootstrap import load_spec
from services.cli import main
from shared import db
from shared.clock import SystemClock
from shared.runtime import Runtime
from shared.settings import get_settings
from shared.topics import CLINICAL_EVENTS
from tests.integration.harness import read_topic, settings_for

pytestmark = pytest.mark.infra


@pytest.fixture
def operator_env(infra, monkeypatch):
    monkeypatch.setenv("NTX_DATABASE_URL", infra.database_url)
    monkeypatch.setenv("NTX_KAFKA_BOOTSTRAP", infra.bootstrap)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_list_and_replay_a_dead_letter(infra, unique, operator_env, capsys):
    patient = f"dlq-{unique}"
    runtime = Runtime(load_spec("alerts"), settings_for(infra), SystemClock(), schema="alerts")
    await runtime.start()
    try:
        bad = {
            "specversion": "1.0",
            "id": f"id-{unique}",
            "source": "hs",
            "type": "ntx.dose.administered.v1",
            "time": "2026-03-02T10:00:00Z",
            "subject": patient,
            "data": {
                "patient_id": patient,
                "administered_at": "2026-03-02T10:00:00Z",
                "dose_mg": "fifty",
            },
        }
        raw = json.dumps(bad).encode()
        assert await runtime.process(CLINICAL_EVENTS.name, 0, 0, patient.encode(), raw) == "dead"
    finally:
        await runtime.stop()

    assert await _call(main, ["dlq", "list"]) == 0
    letters = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    mine = [x for x in letters if x["key"] == patient]
    assert mine and mine[0]["field"] == "data.dose_mg" and mine[0]["service"] == "alerts"

    fixed = {**bad, "data": {**bad["data"], "dose_mg": 50}}
    fixed_path = f"/tmp/ntx-fixed-{unique}.json"
    with open(fixed_path, "w") as fh:
        json.dump(fixed, fh)
    assert await _call(main, ["dlq", "replay", mine[0]["id"], "--file", fixed_path]) == 0
    got = await read_topic(
        infra.bootstrap,
        CLINICAL_EVENTS.name,
        until=lambda ms: any(m.key == patient.encode() for m in ms),
    )
    assert [json.loads(m.value)["data"]["dose_mg"] for m in got if m.key == patient.encode()] == [
        50
    ]
    assert await _call(main, ["dlq", "replay", "00000000-0000-0000-0000-000000000000"]) == 2
    conn = await db.connect(infra.database_url, "alerts")
    try:
        assert await conn.fetchval(
            "SELECT replayed_at IS NOT NULL FROM dead_letters WHERE id = $1::uuid", mine[0]["id"]
        )
    finally:
        await conn.close()


async def _call(func, argv):
    """The CLI runs its own event loop: call it from a worker thread."""
    import asyncio

    return await asyncio.to_thread(func, argv)


async def test_replay_sends_the_original_key_and_value_exactly(infra, unique, operator_env, capsys):
    """A key PostgreSQL text cannot hold (a NUL) is kept as bytes and replayed as it came."""
    key = f"dlq-{unique}".encode() + b"\x00"
    raw = json.dumps({"not": "an event", "n": unique}).encode()
    runtime = Runtime(load_spec("alerts"), settings_for(infra), SystemClock(), schema="alerts")
    await runtime.start()
    try:
        assert await runtime.process(CLINICAL_EVENTS.name, 0, 0, key, raw) == "dead"
    finally:
        await runtime.stop()
    assert await _call(main, ["dlq", "list"]) == 0
    letters = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (mine,) = [x for x in letters if x["key"] == f"dlq-{unique}\\x00"]  # shown escaped
    assert await _call(main, ["dlq", "replay", mine["id"]]) == 0
    got = await read_topic(
        infra.bootstrap, CLINICAL_EVENTS.name, until=lambda ms: any(m.key == key for m in ms)
    )
    assert [m.value for m in got if m.key == key] == [raw]
