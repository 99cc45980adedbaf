"""The README's "Connecting an EHR" walk-through: under ``ntx run``, the intake
Bundle example POSTed to the gateway with the dev client's token becomes an intake
request the intake service decides, as the same facts sent as an NTX event would."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path

import pytest

from services.gateway.clients import DEV_TOKEN_FILE
from shared.topics import INTAKE_DECISIONS
from tests.e2e.running import exported, ntx_run
from tests.integration.gateway.client import event_ids
from tests.integration.harness import read_topic

pytestmark = pytest.mark.infra

DECISIONS = {f"ntx.intake.{d}.v1" for d in ("accepted", "deferred", "rejected")}
EXAMPLE = Path(__file__).parents[2] / "examples" / "fhir" / "intake_bundle.json"


def post(url: str, token: str, body: bytes) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as r:
        return r.status, json.loads(r.read())


def test_a_posted_intake_bundle_is_decided_by_the_intake_service(tmp_path):
    with ntx_run(tmp_path) as lines:
        [fhir] = [m.group(1) for line in lines if (m := re.search(r"FHIR R4\s+(\S+/fhir)\b", line))]
        token = (tmp_path / DEV_TOKEN_FILE).read_text().strip()
        assert all(token not in line for line in lines)
        status, answer = post(fhir, token, EXAMPLE.read_bytes())
        assert status == 200, answer
        [request_id] = event_ids(answer)
        bootstrap = exported(lines, "NTX_KAFKA_BOOTSTRAP")

        def decided(msgs) -> bool:
            return any(json.loads(m.value).get("causationid") == request_id for m in msgs)

        msgs = asyncio.run(read_topic(bootstrap, INTAKE_DECISIONS.name, until=decided, timeout=90))
        [decision] = [e for m in msgs if (e := json.loads(m.value))["causationid"] == request_id]
        assert decision["type"] in DECISIONS
        for name in ("gateway", "intake"):
            assert token not in (tmp_path / f"{name}.log").read_text()
