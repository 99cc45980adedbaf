"""Runs the benchmark phases, each on a fresh embedded stack so one phase's backlog
never slows the next, and gathers the figures."""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from services.bench import intake, latency, notifier, pipeline, scheduler

Log = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    pipeline_patients: int
    pipeline_days: int
    latency_alerts: int
    scheduler_patients: int
    intake_requests: int
    notifier_requests: int


def run_all(sizes: Sizes, log: Log) -> tuple[dict, dict]:
    """The ``--json`` object, and extra figures for the table."""
    with tempfile.TemporaryDirectory(prefix="ntx-bench-") as tmp:
        root = Path(tmp)
        n, days = sizes.pipeline_patients, sizes.pipeline_days
        log(f"pipeline: {n} patients x {days} days, then the raw broker reference")
        one = pipeline.measure(root / "pipeline-1x", n, days, with_raw=True)
        log(f"pipeline: {4 * n} patients x {days} days")
        four = pipeline.measure(root / "pipeline-4x", 4 * n, days, with_raw=False)
        log(f"alert latency: {sizes.latency_alerts} missed-dose deadlines in real time")
        lat = latency.measure(root / "latency", sizes.latency_alerts)
        log(f"scheduler: {sizes.scheduler_patients} active patients")
        sched = scheduler.measure(root / "scheduler", sizes.scheduler_patients)
        log(f"intake: {sizes.intake_requests} requests")
        decided = intake.measure(root / "intake", sizes.intake_requests)
        log(f"notifier: {sizes.notifier_requests} webhook deliveries")
        sent = notifier.measure(root / "notifier", sizes.notifier_requests)
    result = {
        "raw_events_per_s": round(one.raw_events_per_s, 1),
        "pipeline_events_per_s": round(one.events_per_s, 1),
        "ratio": round(one.events_per_s / one.raw_events_per_s, 4),
        "alert_latency_p50_ms": round(lat.p50_ms, 1),
        "alert_latency_p99_ms": round(lat.p99_ms, 1),
        "scheduler_due_per_s": round(sched.due_per_s, 1),
        "scheduler_rss_mb": round(sched.rss_mb, 1),
        "intake_decisions_per_s": round(decided.per_s, 1),
        "notifier_deliveries_per_s": round(sent.per_s, 1),
        "patients": n,
        "days": days,
        "broker": one.broker,
        "versions": {
            "python": platform.python_version(),
            "faust_streaming": version("faust-streaming"),
            "aiokafka": version("aiokafka"),
            "broker": one.broker,
            "postgresql": one.postgres_version,
        },
    }
    extra = {
        "pipeline events (1x)": one.events,
        "pipeline seconds (1x)": round(one.seconds, 1),
        "pipeline mean event bytes": one.mean_bytes,
        f"pipeline_events_per_s at 4x ({4 * n} patients)": round(four.events_per_s, 1),
        "pipeline events (4x)": four.events,
        "pipeline seconds (4x)": round(four.seconds, 1),
        "ground truth (1x, 4x)": f"{one.truth}, {four.truth}",
        "alerts measured": lat.count,
        "scheduler due events": sched.due,
        "scheduler materialise_per_s": round(sched.materialise_per_s, 1),
        "scheduler rss_mb now": round(sched.rss_now_mb, 1),
        "intake decisions": decided.count,
        "notifier deliveries": sent.count,
        "notifier repeats at the receiver": sent.duplicates,
        "notifier peak requests in flight": sent.peak_in_flight,
    }
    return result, extra
