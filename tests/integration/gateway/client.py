"""A running gateway (``ntx service gateway`` as its own process, own schema) and a
small HTTP client for it: the tests send what an EHR would, over the wire."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.gateway.clients import new_token
from shared.clock import FileClock
from tests.integration.service_process import ServiceProcess

FHIR = "application/fhir+json"
EXAMPLES = Path(__file__).parents[3] / "examples" / "fhir"


class Gateway:
    """The process, a client allowed everything (``token``) and one allowed only
    Observations (``lab_token``)."""

    def __init__(self, infra: Any, prefix: str, log: Path, clock: FileClock | None = None):
        self.token, digest = new_token()
        self.lab_token, lab_digest = new_token()
        self.cds_token, cds_digest = new_token()
        clients = [
            {"name": "ehr", "token_sha256": digest, "scopes": ["*"]},
            {"name": "lab", "token_sha256": lab_digest, "scopes": ["Observation"]},
            {"name": "cds", "token_sha256": cds_digest, "scopes": ["cds-services"]},
        ]
        self.proc = ServiceProcess(
            "gateway",
            infra,
            prefix,
            log,
            clock=clock,
            NTX_RELAY_POLL_S="0.05",
            NTX_GATEWAY_CLIENTS=json.dumps(clients),
        )
        self.schema = f"{prefix}gateway"
        self.database_url = infra.database_url

    def post(
        self,
        path: str,
        body: bytes,
        *,
        token: str | None = "default",
        content_type: str = FHIR,
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {"Content-Type": content_type}
        bearer = self.token if token == "default" else token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        return self.request("POST", path, body, headers)

    def get(self, path: str) -> tuple[int, Any, dict[str, str]]:
        return self.request("GET", path, None, {})

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        url = f"http://127.0.0.1:{self.proc.port}{path}"
        req = urllib.request.Request(url, body, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                status, text, got = answer.status, answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as refused:
            status, text, got = refused.code, refused.read(), dict(refused.headers)
        return status, json.loads(text), got

    async def count(self, sql: str, *args: Any) -> int:
        conn = await asyncpg.connect(
            self.database_url, server_settings={"search_path": self.schema}
        )
        try:
            return int(await conn.fetchval(sql, *args))
        finally:
            await conn.close()

    async def outbox_ids(self) -> list[str]:
        conn = await asyncpg.connect(
            self.database_url, server_settings={"search_path": self.schema}
        )
        try:
            rows = await conn.fetch(
                "SELECT convert_from(value, 'UTF8')::json->>'id' AS id FROM outbox ORDER BY id"
            )
            return [r["id"] for r in rows]
        finally:
            await conn.close()


def event_ids(outcome: dict[str, Any]) -> list[str]:
    """The NTX event ids an OperationOutcome (or a Bundle response's outcomes) names."""
    if outcome["resourceType"] == "Bundle":
        return [i for e in outcome["entry"] for i in event_ids(e["response"]["outcome"])]
    return [
        c["code"]
        for issue in outcome["issue"]
        for c in issue.get("details", {}).get("coding", [])
        if c.get("system") == "urn:ntx:event-id"
    ]


@contextlib.asynccontextmanager
async def running_gateway(
    infra: Any, logs: Path, prefix: str, now: datetime
) -> AsyncIterator[Gateway]:
    """A gateway process on its own schema, its simulated clock at ``now``, until the
    block ends."""
    clock = FileClock(logs / "clock")
    clock.set(now)
    gw = Gateway(infra, prefix, logs / "gateway.log", clock)
    gw.proc.start()
    try:
        await gw.proc.wait_healthy()
        yield gw
    finally:
        gw.proc.kill()
