"""End to end (DESIGN.md §7): the three services as separate processes on the real
broker and database, one simulated clock; then the same script under faults
(kill -9 of each service, a broker pause, a PostgreSQL restart) must yield the same
decisions, due events, alerts and notifications: nothing lost, nothing duplicated."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from datetime import datetime, time

import pytest

from services.cluster import Cluster
from services.demo import START, ZONE, drive
from shared.localtime import to_utc
from shared.topics import ALERTS, INTAKE_DECISIONS, NOTIFICATIONS, SCHEDULE

pytestmark = pytest.mark.infra

DAYS = 14
TOPICS = (INTAKE_DECISIONS, SCHEDULE, ALERTS, NOTIFICATIONS)


def run(tmp_path, on_day_factory=None) -> dict[str, list[dict]]:
    start = to_utc(datetime.combine(START, time(7, 0)), ZONE)
    with Cluster(tmp_path, start) as cluster:
        on_day = on_day_factory(cluster) if on_day_factory else None
        asyncio.run(drive(cluster, DAYS, on_day))
        return {t.name: asyncio.run(cluster.read(t.name)) for t in TOPICS}


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("clean")


@pytest.fixture(scope="module")
def clean(clean_dir) -> dict[str, list[dict]]:
    return run(clean_dir)


#: Request fields and values the scripted patients carry; none may reach a log.
CLINICAL = [
    "heroin",
    "last_opioid_use",
    "liver_function",
    "opioids_detected",
    "alt_uln",
    "naloxone_challenge",
    "dose_mg",
    "administered_at",
    "patient_choice",
    '"alt"',
    "timezone",
]


def test_service_logs_carry_ids_and_codes_only(clean, clean_dir):
    logs = {
        name: (clean_dir / f"{name}.log").read_text() for name in ("intake", "scheduler", "alerts")
    }
    assert all('"msg":"handled"' in text for text in logs.values())  # the logs are not empty
    for name, text in logs.items():
        found = [word for word in CLINICAL if word in text]
        assert not found, f"{name} log carries {found}"


def alerts_of(events: dict[str, list[dict]]) -> Counter:
    return Counter(
        (e["subject"], e["type"].split(".")[2], e["data"]["alert"], e["data"]["reason"])
        for e in events[ALERTS.name]
    )


def test_month_start_across_three_processes(clean):
    decisions = Counter((e["subject"], e["data"]["decision"]) for e in clean[INTAKE_DECISIONS.name])
    assert decisions == Counter(
        {
            ("pt-xr", "accepted"): 1,
            ("pt-oral-miss", "accepted"): 1,
            ("pt-stop", "accepted"): 1,
            ("pt-deferred", "deferred"): 1,
            ("pt-deferred", "accepted"): 1,
        }
    )
    alerts = alerts_of(clean)
    assert alerts[("pt-oral-miss", "raised", "missed_dose", "dose_not_recorded")] == 1
    assert alerts[("pt-oral-miss", "raised", "overdose_risk", "blockade_lapsed")] == 1
    assert alerts[("pt-oral-miss", "resolved", "overdose_risk", "blockade_lapsed")] == 1
    assert alerts[("pt-stop", "raised", "overdose_risk", "discontinued")] == 1
    assert not [k for k in alerts if k[0] in ("pt-xr", "pt-deferred")]  # adherent: quiet
    notes = [e["data"] for e in clean[NOTIFICATIONS.name]]
    assert all(n["offer_naloxone"] for n in notes if n["alert"] == "overdose_risk")
    assert {n["audience"] for n in notes} == {"care_team", "patient"}  # consent: no external
    doses = [
        e
        for e in clean[SCHEDULE.name]
        if e["type"] == "ntx.dose.due.v1" and e["subject"] == "pt-xr"
    ]
    assert doses == []  # XR patients get injections, not oral doses


def faults(cluster: Cluster, log: list[str]):
    """Kill -9 every service (12 kills in all), pause the broker, restart PostgreSQL."""
    rng = random.Random(7)
    plan = {d: rng.choice(["intake", "scheduler", "alerts"]) for d in range(1, DAYS - 1)}
    for name, day in zip(["intake", "scheduler", "alerts"], [2, 5, 8], strict=True):
        plan[day] = name  # each at least once

    async def on_day(n: int) -> None:
        assert cluster.procs is not None and cluster.stack is not None
        if n in plan:
            name = plan[n]
            cluster.procs.stop(name, signal.SIGKILL)
            cluster.procs.start(name)
            log.append(f"day {n}: kill -9 {name}")
        if n == 6:
            cluster.stack.broker.pause()
            await asyncio.sleep(6)
            cluster.stack.broker.resume()
            log.append(f"day {n}: broker paused 6 s")
        if n == 9:
            await asyncio.to_thread(cluster.stack.postgres.restart)
            log.append(f"day {n}: postgres restarted")
        if n in plan:
            assert await asyncio.to_thread(cluster.procs.wait_healthy, 120)

    return on_day


def test_faults_lose_and_duplicate_nothing(clean, tmp_path):
    log: list[str] = []
    faulty = run(tmp_path, lambda cluster: faults(cluster, log))
    assert sum("kill -9" in line for line in log) >= 10, log
    for topic in TOPICS:
        clean_ids = {e["id"] for e in clean[topic.name]}
        faulty_ids = {e["id"] for e in faulty[topic.name]}
        assert faulty_ids == clean_ids, (
            f"{topic.name}: lost {clean_ids - faulty_ids}, extra {faulty_ids - clean_ids}"
        )
    assert alerts_of(faulty) == alerts_of(clean)
