"""Intake throughput: ``requests`` intake requests (distinct patients, all eligible)
sent at once; decisions per second from the first send until the last decision is
read off ``ntx.intake.decisions.v1`` by a downstream consumer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from services.bench.topics import watching
from services.cluster import Cluster
from services.demo import intake
from services.simulate import START, ZONE
from shared.localtime import to_utc
from shared.topics import INTAKE_DECISIONS


@dataclass(frozen=True)
class IntakeResult:
    count: int
    per_s: float


def measure(data_dir: Path, requests: int) -> IntakeResult:
    at = to_utc(datetime.combine(START, clock_time(8, 0)), ZONE)
    with Cluster(data_dir, at, services=("intake",)) as cluster:
        seconds = asyncio.run(_measure(cluster, requests, at))
    return IntakeResult(requests, requests / seconds)


async def _measure(cluster: Cluster, n: int, at: datetime) -> float:
    last_use = START - timedelta(days=10)
    messages = [intake(f"in-{i:06d}", "oral" if i % 2 else "xr", last_use, at) for i in range(n)]
    try:
        async with watching(cluster.bootstrap, INTAKE_DECISIONS.name) as watcher:
            began = time.perf_counter()
            sending = asyncio.ensure_future(cluster.send(messages))
            seen = 0
            while seen < n:
                fetched = await watcher.getmany(timeout_ms=100, max_records=5000)
                seen += sum(len(records) for records in fetched.values())
            elapsed = time.perf_counter() - began
            await sending
            return elapsed
    finally:
        await cluster.close_probes()
