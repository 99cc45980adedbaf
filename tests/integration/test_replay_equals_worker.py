"""DESIGN.md §4.3 r2: the worker and ``ntx alerts replay`` run one implementation of
the alert rules and give the same output for the same input. Every file in
``examples/replay/`` goes through the replay's code and through the alerts worker
(real broker and database, simulated clock); the alert output must be identical,
moment for moment.

The worker is driven the way the replay reads a file: before each line the clock
steps to each deadline still due before it (strictly before an event line, at or
before a clock line: ``shared.timers.fires_before_input``) and the worker's own
timer path fires it; then the clock is set to the line's ``at`` and the event is
sent and handled. The timer loop polls too rarely to act on its own, so the clock
never outruns it and the comparison is exact."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from services.alerts.cli import replay_lines
from services.alerts.replay import ReplayLine
from services.alerts.service import SPEC
from services.topic_reading import read_all
from shared import db
from shared.clock import SimulatedClock
from shared.envelope import build, parse_data
from shared.timers import fires_before_input
from shared.topics import ALERTS, EVENT_TYPES, short_type
from tests.integration.builders import send
from tests.integration.harness import Harness, eventually

pytestmark = pytest.mark.infra

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "replay").glob("*.jsonl"))
SOURCE = "examples/replay"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
async def test_replay_and_worker_give_the_same_alerts(infra, unique, path):
    text = _own_patients(path.read_text(), unique)
    expected = list(replay_lines(text.splitlines()))
    lines = [ReplayLine.model_validate_json(t) for t in text.splitlines() if t.strip()]
    patients = sorted({line.data["patient_id"] for line in lines if line.data})
    schema = f"alerts_{unique}"
    clock = SimulatedClock(lines[0].at)
    async with Harness(SPEC, infra, schema, clock=clock, timer_poll_s=3600) as h:
        conn = await db.connect(infra.database_url, schema)
        try:
            for line in lines:
                await _fire_until(h, conn, clock, patients, line.at, line.type == "clock")
                clock.set(max(line.at, clock.now()))
                if line.type != "clock":
                    await _send_and_wait(h, line)
            assert await eventually(lambda: _drained(conn))
        finally:
            await conn.close()
    got = await _worker_alerts(infra, patients)
    assert got == expected
    assert expected or path.name == "adherent_month.jsonl"  # the others do alert


#: Lines naming a notification by its id, which is derived from the patient's alert.
OUTCOMES = ('"ntx.notification.delivered.v1"', '"ntx.notification.failed.v1"')


def _own_patients(text: str, unique: str) -> str:
    """The file with its patients renamed for this run (both sides get the same
    text), so nothing else on the session's shared topics is mistaken for them. A
    file with delivery outcomes keeps its names, which no other file or test uses:
    renaming would orphan the notification ids its outcomes name."""
    if any(kind in text for kind in OUTCOMES):
        return text
    for line in text.splitlines():
        data = json.loads(line).get("data") if line.strip() else None
        if data:
            pid = data["patient_id"]
            if f"{pid}-{unique}" not in text:
                text = text.replace(f'"{pid}"', f'"{pid}-{unique}"')
    return text


async def _fire_until(h, conn, clock, patients, at: datetime, inclusive: bool) -> None:
    """Step the clock to each deadline of the file's patients due before ``at`` (at
    or before, for a clock line) and fire it through the worker's timer path."""
    while True:
        due = await conn.fetchval(
            "SELECT min(due_at) FROM timers WHERE patient_id = ANY($1)", patients
        )
        if due is None or not (fires_before_input(due, at) or (inclusive and due == at)):
            return
        clock.set(max(due, clock.now()))
        await h.runtime.fire_due_timers()


async def _send_and_wait(h: Harness, line: ReplayLine) -> None:
    data = parse_data(EVENT_TYPES[line.type], line.data or {})
    patient = data.patient_id  # type: ignore[attr-defined]
    before = len(h.outcomes_for(patient))
    envelope = build(line.type, data, source=SOURCE, time=line.at, id_=line.id)
    await send(h.infra.bootstrap, envelope)
    assert await eventually(lambda: _handled(h, patient, before + 1))


async def _handled(h: Harness, patient: str, n: int) -> bool:
    return len(h.outcomes_for(patient)) >= n


async def _drained(conn) -> bool:
    return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def _worker_alerts(infra, patients: list[str]) -> list[dict]:
    """The alert events on the topic for these patients, in the replay's line form."""
    records = await read_all(infra.bootstrap, [ALERTS.name])
    mine = [json.loads(r.value) for r in records if r.key and r.key.decode() in patients]
    mine.sort(key=lambda e: e["time"])  # one partition per patient; stable across them
    return [
        {
            "at": e["time"],
            "type": short_type(e["type"]),
            "alert": e["data"]["alert"],
            "severity": e["data"]["severity"],
            "reason": e["data"]["reason"],
            "patient_id": e["data"]["patient_id"],
        }
        for e in mine
    ]
