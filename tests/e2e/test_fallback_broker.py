"""The fallback broker (DESIGN.md §2): where no JDK is found ``ntx run`` starts Tansu
and says so in one line; an intake request still becomes a decision through the three
services. ``NTX_EMBEDDED_BROKER=tansu`` forces the fallback here."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.topic_reading import read_all
from shared.topics import INTAKE_DECISIONS
from tests.e2e.running import exported, ntx_run, send_example

pytestmark = pytest.mark.infra


async def decision_for(bootstrap: str, patient: str, timeout: float = 60.0) -> dict | None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for record in await read_all(bootstrap, [INTAKE_DECISIONS.name]):
            if record.key == patient.encode():
                return json.loads(record.value)
        await asyncio.sleep(0.5)
    return None


def test_ntx_run_on_the_fallback_broker_decides_an_intake_request(tmp_path):
    with ntx_run(tmp_path, {"NTX_EMBEDDED_BROKER": "tansu"}) as lines:
        broker_lines = [line for line in lines if line.startswith("ntx: broker")]
        assert (
            len(broker_lines) == 1
            and "Tansu (fallback: NTX_EMBEDDED_BROKER=tansu)" in (broker_lines[0])
        ), lines
        assert "ntx: services ready" in lines
        bootstrap = exported(lines, "NTX_KAFKA_BOOTSTRAP")
        send_example(tmp_path, "examples/events/intake_request.json")
        decision = asyncio.run(decision_for(bootstrap, "pt-0001"))
    assert decision is not None, "no decision on the fallback broker"
    assert decision["type"].startswith("ntx.intake.") and decision["subject"] == "pt-0001"
