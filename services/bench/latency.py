"""Alert latency in real time: the alerts service on the wall clock, with patients whose
dose deadlines (due + 12 h, the clinical setting) fall a few seconds ahead, spread out;
latency is the wall time from each deadline to its ``alert.raised`` being read by a
downstream consumer. The dose events are sent with due times 12 h in the past, which
is how a short deadline is made without changing the clinical rule."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from services.alerts.domain.settings import DEFAULT_SETTINGS
from services.bench.topics import watching
from services.cluster import Cluster
from shared.envelope import build
from shared.events import DoseDue, TreatmentPlan
from shared.topics import ALERTS

#: First deadline this far ahead (every dose event is in by then), then one per step.
LEAD_S = 3.0
STEP_S = 0.02
#: The runtime's defaults, not the simulation's faster polls.
REAL_TIME_ENV = {
    "NTX_TIMER_POLL_S": "0.05",
    "NTX_RELAY_POLL_S": "0.05",
    "NTX_BROKER_COMMIT_INTERVAL_S": "1.0",
}


@dataclass(frozen=True)
class LatencyResult:
    count: int
    p50_ms: float
    p99_ms: float


def measure(data_dir: Path, alerts: int) -> LatencyResult:
    with Cluster(data_dir, None, services=("alerts",), extra_env=REAL_TIME_ENV) as cluster:
        latencies = asyncio.run(_measure(cluster, alerts))
    ordered = sorted(latencies)
    return LatencyResult(len(ordered), _quantile(ordered, 0.50), _quantile(ordered, 0.99))


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile, in milliseconds."""
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1] * 1000


async def _measure(cluster: Cluster, n: int) -> list[float]:
    patients = [f"lat-{i:05d}" for i in range(n)]
    try:
        async with watching(cluster.bootstrap, ALERTS.name) as watcher:
            now = datetime.now(UTC)
            await cluster.send([_plan_created(p, now) for p in patients])
            await cluster.settle()
            first = datetime.now(UTC) + timedelta(seconds=LEAD_S)
            deadlines = {p: first + timedelta(seconds=i * STEP_S) for i, p in enumerate(patients)}
            await cluster.send([_dose_due(p, d, now) for p, d in deadlines.items()])
            arrived = await _watch(watcher, set(patients), timeout=LEAD_S + n * STEP_S + 30)
    finally:
        await cluster.close_probes()
    return [arrived[p] - deadlines[p].timestamp() for p in arrived]


async def _watch(watcher: AIOKafkaConsumer, waiting: set[str], timeout: float) -> dict[str, float]:
    """Wall time at which each patient's ``alert.raised`` was read."""
    arrived: dict[str, float] = {}
    give_up = time.monotonic() + timeout
    while waiting - arrived.keys() and time.monotonic() < give_up:
        fetched = await watcher.getmany(timeout_ms=100)
        seen = time.time()
        for records in fetched.values():
            for r in records:
                event = json.loads(r.value)
                if event["type"] == "ntx.alert.raised.v1" and event["subject"] in waiting:
                    arrived.setdefault(event["subject"], seen)
    return arrived


def _plan_created(patient: str, now: datetime) -> dict:
    plan = TreatmentPlan(
        patient_id=patient,
        timezone="UTC",
        formulation="oral",
        oral_regimen="daily",
        induction_days=0,
        dose_time=datetime(2026, 1, 1, 9, 0).time(),
        start_date=date(2026, 1, 1),
    )
    return build("ntx.plan.created.v1", plan, source="ntx/scheduler", time=now)


def _dose_due(patient: str, deadline: datetime, now: datetime) -> dict:
    due = deadline - DEFAULT_SETTINGS.missed_dose_after
    data = DoseDue(patient_id=patient, due_utc=due, due_local=due.replace(tzinfo=None), dose_mg=50)
    return build("ntx.dose.due.v1", data, source="ntx/scheduler", time=now)
