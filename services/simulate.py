"""``ntx simulate --patients N --days D --seed S``: a synthetic cohort through the three
services (separate processes, real broker and database, one simulated clock), then a
check against the ground truth the simulator knows because it made the patients act.

The cohort and its behaviours are in :mod:`services.simulation.cohort`, the alerts
they must cause in :mod:`services.simulation.truth`. The run begins the day before
START with the alerts service not yet deployed: when it starts, its consumer group
begins at the topics' ends (their history gone, as after retention), so the patients
who enrolled that day are adopted from their next due, not dropped.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path

from aiokafka.partitioner import murmur2
from tqdm import tqdm

from services.cluster import Cluster
from services.demo import ZONE, _event
from services.simulation.cohort import FIRST_DAY, START, Patient, cohort, run_end, sent_at
from services.simulation.sends import day_events
from services.simulation.truth import check, ground_truth
from shared.localtime import to_utc
from shared.topics import ALERTS, INTAKE_DECISIONS, NOTIFICATIONS, SCHEDULE, event_type

__all__ = [
    "FIRST_DAY",
    "START",
    "ZONE",
    "Patient",
    "check",
    "cohort",
    "day_events",
    "ground_truth",
    "run_simulation",
    "simulate",
]

EARLY_SERVICES = ("intake", "scheduler")
#: Seconds the run waits at its end before the last settle (a few timer polls).
END_GRACE_S = 1.0
LATE_SERVICE = "alerts"
MARKER = "sim-marker"
#: after the last day before the alerts service is deployed, before it is deployed
MARKERS_AT = sent_at(FIRST_DAY) + timedelta(hours=1)


def markers() -> list[dict]:
    """One message the alerts service may see or not without effect, on each partition
    of its input topics, sent last before it is deployed. A faust consumer starting at
    committed offsets can be handed the message just before them once (the broker
    returns the batch holding the offset); the marker is that message, so no patient's
    history leaks in."""
    at = MARKERS_AT
    out: dict[tuple[str, int], dict] = {}
    for n in range(1000):
        patient = f"{MARKER}-{n}"
        for type_, data in (
            ("ntx.uds.due.v1", {"due_local": START.isoformat()}),  # alerts ignores it
            ("ntx.alert.acknowledged.v1", {"alert": "none", "by": MARKER}),  # nothing open
        ):
            topic = event_type(type_).topic
            key = (topic.name, _partition(patient, topic.partitions))
            out.setdefault(key, _event(type_, at, {"patient_id": patient, **data}))
        if len(out) == 2 * SCHEDULE.partitions:
            return list(out.values())
    raise RuntimeError("no marker key for some partition")


def _partition(key: str, partitions: int) -> int:
    """The Kafka default partitioner's choice (murmur2, as the Java client and aiokafka)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


async def drive(
    cluster: Cluster, patients: list[Patient], days: int, progress: bool, on_day=None
) -> None:  # type: ignore[no-untyped-def]
    """Each day's events at 09:20 local; ``on_day(n)`` (fault tests) runs after the sends.
    The alerts service is deployed at 05:00 on day 0, after the first day's history."""
    total = days - FIRST_DAY
    bar = tqdm(
        total=total, desc="simulated days", unit="day", disable=not progress, file=sys.stderr
    )
    for n in range(FIRST_DAY, days):
        if n == 0:
            # the clock reaches the markers' time before they are sent: a message stamped
            # ahead of a service's clock is refused (DESIGN.md §3.3 r2)
            await cluster.advance(MARKERS_AT)
            await cluster.send(markers())
            await cluster.advance(to_utc(datetime.combine(START, time(5, 0)), ZONE))
            await cluster.start_service(LATE_SERVICE, from_end=True)
        await cluster.advance(sent_at(n), step=timedelta(hours=6))
        await cluster.send([e for p in patients for e in day_events(p, n, days)])
        if on_day is not None and n >= 0:
            await on_day(n)
        await cluster.settle()
        bar.update(1)
    await cluster.advance(run_end(days))
    # what falls due at the very end is read off the topics next: give the services'
    # loops a moment past two quiet probes to emit it, then settle once more
    await asyncio.sleep(END_GRACE_S)
    await cluster.settle()
    await cluster.close_probes()
    bar.close()


def run_simulation(
    patients_n: int,
    days: int,
    seed: int,
    data_dir: Path,
    progress: bool = True,
    faults=None,  # type: ignore[no-untyped-def]
    brokers: int = 1,
) -> dict:
    """``faults(cluster)`` may return an ``on_day`` hook that injects failures;
    ``brokers`` > 1 runs a replicated Kafka cluster (the replication fault test)."""
    patients = cohort(patients_n, days, seed)
    start = to_utc(datetime.combine(START + timedelta(days=FIRST_DAY), time(5, 0)), ZONE)
    with Cluster(data_dir, start, services=EARLY_SERVICES, brokers=brokers) as cluster:
        on_day = faults(cluster) if faults else None
        asyncio.run(drive(cluster, patients, days, progress, on_day))
        dead_letters = asyncio.run(cluster.dead_letters())
        events = {
            t.name: asyncio.run(cluster.read(t.name))
            for t in (INTAKE_DECISIONS, SCHEDULE, ALERTS, NOTIFICATIONS)
        }
        adopted = asyncio.run(cluster.adopted())
    return {
        "patients": patients,
        "events": events,
        "truth": check(patients, events[ALERTS.name], days),
        "dead_letters": dead_letters,
        "adopted": adopted,
    }


def simulate(args) -> int:  # type: ignore[no-untyped-def]
    if args.patients < 1 or args.days < 1:
        print(
            "ntx simulate: invalid input: --patients and --days must be at least 1", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="ntx-sim-") as tmp:
        result = run_simulation(args.patients, args.days, args.seed, Path(tmp))
    _summary(result)
    truth = result["truth"]
    return 0 if not truth["missed"] and not truth["spurious"] else 1


def _summary(result: dict) -> None:
    events = [e for topic in result["events"].values() for e in topic]
    by_type = Counter(e["type"] for e in events)
    alerts = Counter(
        f"{e['data']['alert']}/{e['data']['reason']}"
        for e in result["events"][ALERTS.name]
        if e["type"] == "ntx.alert.raised.v1"
    )
    behaviours = Counter(f"{p.formulation}/{p.behaviour}" for p in result["patients"])
    print("cohort:", ", ".join(f"{k} {v}" for k, v in sorted(behaviours.items())))
    print(f"patients adopted by the alerts service (deployed late): {result['adopted']}")
    print("\nevents by type:")
    for name, count in sorted(by_type.items()):
        print(f"  {name:<36} {count:>7}")
    print("\nalerts raised by code/reason:")
    for name, count in sorted(alerts.items()):
        print(f"  {name:<46} {count:>7}")
    truth = result["truth"]
    print(f"\nground truth: {len(truth['missed'])} missed, {len(truth['spurious'])} spurious")
    for kind in ("missed", "spurious"):
        for row in truth[kind][:20]:
            print(f"  {kind}: {json.dumps(row)}")
