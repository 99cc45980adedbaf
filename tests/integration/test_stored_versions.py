"""A row written before stored documents carried a version still loads in the worker
(DESIGN.md §5 r2): the alerts worker reads a revision-1 alert state, upcasts it,
acts on it and writes it back at the current version."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.alerts.domain.state import STORED
from services.alerts.service import SPEC
from shared import db
from shared.clock import SimulatedClock
from shared.topics import ALERTS
from tests.integration.builders import event, send
from tests.integration.harness import Harness, eventually, patient_messages

pytestmark = pytest.mark.infra

ROW = Path(__file__).parents[1] / "fixtures" / "stored" / "alert_state" / "v1_revision1.json"
NOW = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)


async def test_a_revision_1_alert_state_is_upcast_used_and_saved_current(infra, unique):
    patient, schema = f"v1-{unique}", f"alerts_{unique}"
    row = {**json.loads(ROW.read_text()), "patient_id": patient}
    assert "schema_version" not in row
    negative = event(
        "ntx.uds.resulted.v1",
        NOW,
        patient_id=patient,
        collected_at=NOW.isoformat(),
        opioids_detected=False,
        fentanyl_detected=False,
    )
    async with Harness(SPEC, infra, schema, clock=SimulatedClock(NOW)) as h:
        conn = await db.connect(infra.database_url, schema)
        try:
            await conn.execute(
                "INSERT INTO patient_state (patient_id, state, updated_at) VALUES ($1, $2, $3)",
                patient,
                row,  # the connection's codec writes it as JSON
                NOW,
            )
            await send(infra.bootstrap, negative)
            assert await eventually(lambda: _handled(h, patient))
            stored = await conn.fetchval(
                "SELECT state::text FROM patient_state WHERE patient_id = $1", patient
            )
        finally:
            await conn.close()
        # the open alert the old row carried is resolved by the newer negative screen
        alerts = await patient_messages(infra.bootstrap, ALERTS.name, patient, 1)
    assert h.outcomes_for(patient) == ["handled"]
    assert [(a["type"], a["data"]["alert"]) for a in alerts] == [
        ("ntx.alert.resolved.v1", "opioid_use_detected")
    ]
    saved = json.loads(stored)
    assert saved["schema_version"] == STORED.version
    assert STORED.load(stored).dosed_since_plan is True  # upcast from its coverage


async def _handled(h: Harness, patient: str) -> bool:
    return len(h.outcomes_for(patient)) >= 1
