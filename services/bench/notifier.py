"""Notifier throughput (issue 16: at least 500 deliveries per second to a local
receiver on this 2-core machine, with the rest of the stack running):
``requests`` notification requests sent at once to ``ntx.notifications.v1``, each
delivered as a signed webhook to one endpoint, the demo receiver in this process
(it verifies every signature with ``standardwebhooks``, which costs it CPU too).
Deliveries per second from the first send until the receiver has verified the
last one; every service runs, idle but the notifier."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.bootstrap import SERVICES
from services.cluster import Cluster
from services.notifier.domain.endpoints import new_secret
from services.notifier.receiver import Received, WebhookReceiver
from shared import events as ev
from shared.envelope import build
from shared.infra import free_port


@dataclass(frozen=True)
class NotifierResult:
    count: int
    per_s: float
    duplicates: int
    peak_in_flight: int


def measure(data_dir: Path, requests: int) -> NotifierResult:
    secret = new_secret()
    port = free_port()
    endpoint = {
        "name": "bench",
        "audience": "care_team",
        "url": f"http://127.0.0.1:{port}/webhooks",
        "secret": secret,
    }
    env = {"NTX_NOTIFIER_ENDPOINTS": json.dumps([endpoint])}
    with Cluster(data_dir, None, extra_env=env, services=SERVICES) as cluster:
        return asyncio.run(_measure(cluster, requests, secret, port))


async def _measure(cluster: Cluster, n: int, secret: str, port: int) -> NotifierResult:
    now = datetime.now(UTC)
    messages = [_request(i, now) for i in range(n)]
    delivered: set[str] = set()
    done = asyncio.Event()

    def verified(arrival: Received) -> None:
        """Counted as they arrive: polling the receiver's whole list would cost the
        bench process (and so the receiver) time growing with every delivery."""
        if 200 <= arrival.status <= 299:
            delivered.add(arrival.webhook_id)
            if len(delivered) >= n:
                done.set()

    try:
        async with WebhookReceiver(secret, port=port, on_verified=verified) as receiver:
            began = time.perf_counter()
            await cluster.send(messages)
            try:
                await asyncio.wait_for(done.wait(), 600)
            except TimeoutError:
                raise RuntimeError(f"only {len(delivered)} of {n} delivered") from None
            elapsed = time.perf_counter() - began
            return NotifierResult(
                n, n / elapsed, len(receiver.duplicates()), receiver.peak_in_flight
            )
    finally:
        await cluster.close_probes()


def _request(i: int, now: datetime) -> dict:
    data = ev.NotificationRequested(
        patient_id=f"nt-{i:06d}",
        alert_id=f"bench-{i:06d}",
        alert="overdose_risk",
        severity="critical",
        audience="care_team",
        offer_naloxone=True,
    )
    return build("ntx.notification.requested.v1", data, source="ntx/alerts", time=now)
