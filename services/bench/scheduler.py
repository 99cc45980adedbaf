"""Scheduler at scale: ``patients`` active oral plans put in place, their rolling
horizon materialised by the service, then a clock step at which every patient's
09:00 dose falls due at once. ``due_per_s`` is that burst over the wall time until
every item is emitted and published; RSS is the scheduler process's peak."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import asyncpg

from services.cluster import Cluster
from services.scheduler.domain import new_state
from shared import db
from shared.events import TreatmentPlan
from shared.localtime import to_utc

ZONE = "America/New_York"
START = date(2026, 3, 2)
COPY_CHUNK = 20_000


@dataclass(frozen=True)
class SchedulerResult:
    due: int
    due_per_s: float
    materialise_per_s: float
    rss_mb: float
    rss_now_mb: float


def measure(data_dir: Path, patients: int) -> SchedulerResult:
    with Cluster(data_dir, _local(5, 0), services=("scheduler",)) as cluster:
        assert cluster.procs is not None
        pid = cluster.procs.procs["scheduler"].pid
        materialised = asyncio.run(_materialise(cluster, patients))
        due, seconds = asyncio.run(_drain(cluster, _local(9, 0)))
        peak, now = _rss_mb(pid)
    return SchedulerResult(due, due / seconds, materialised, peak, now)


def _local(hour: int, minute: int) -> datetime:
    return to_utc(datetime.combine(START, clock_time(hour, minute)), ZONE)


def _plan_state(patient: str) -> str:
    plan = TreatmentPlan(
        patient_id=patient,
        timezone=ZONE,
        formulation="oral",
        oral_regimen="daily",
        induction_days=1,
        dose_time=clock_time(9, 0),
        start_date=START,
    )
    return new_state(plan).model_dump_json()


async def _materialise(cluster: Cluster, patients: int) -> float:
    """Active plans whose horizon starts now; returns plans materialised per second."""
    # a plain connection: COPY takes the jsonb column as text
    conn = await asyncpg.connect(cluster.database_url, server_settings={"search_path": "scheduler"})
    try:
        template = _plan_state("PATIENT")
        now = cluster.now()
        for first in range(0, patients, COPY_CHUNK):
            rows = [
                (f"pt-{i:06d}", template.replace("PATIENT", f"pt-{i:06d}"), True, now, now)
                for i in range(first, min(first + COPY_CHUNK, patients))
            ]
            await conn.copy_records_to_table(
                "plans",
                records=rows,
                columns=["patient_id", "state", "active", "horizon_until", "updated_at"],
            )
        began = time.perf_counter()
        short = now + timedelta(hours=24)
        while await conn.fetchval("SELECT count(*) FROM plans WHERE horizon_until < $1", short):
            await asyncio.sleep(0.1)
        return patients / (time.perf_counter() - began)
    finally:
        await conn.close()


async def _drain(cluster: Cluster, now: datetime) -> tuple[int, float]:
    """Move the clock to ``now``; wait until everything due is emitted and published."""
    conn = await db.connect(cluster.database_url, "scheduler")
    try:
        began = time.perf_counter()
        cluster.clock.set(now)
        while await conn.fetchval(
            "SELECT (SELECT count(*) FROM due_items WHERE emitted_at IS NULL AND due_at <= $1)"
            " + (SELECT count(*) FROM outbox WHERE sent_at IS NULL)",
            now,
        ):
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - began
        due = await conn.fetchval("SELECT count(*) FROM due_items WHERE emitted_at IS NOT NULL")
        return due, seconds
    finally:
        await conn.close()


def _rss_mb(pid: int) -> tuple[float, float]:
    """Peak and current resident memory of ``pid`` (Linux /proc), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return _kib(fields["VmHWM"]) / 1024, _kib(fields["VmRSS"]) / 1024


def _kib(value: str) -> float:
    return float(value.split()[0])
