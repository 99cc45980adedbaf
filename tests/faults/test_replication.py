"""Replication under broker crashes (DESIGN.md §5 and §7), Kafka's own
``replication_test`` idea applied to NTX: the seeded cohort runs on a KRaft cluster of
three brokers (replication factor 3, ``min.insync.replicas`` 2); mid-run the broker
leading the most partitions is killed with SIGKILL and later restarted on its data,
then the one leading the most of the others. The run must match the fault-free run of
the same seed: no event lost, no alert or notification duplicated."""

from __future__ import annotations

import asyncio
import re

import pytest

from services.bootstrap import SERVICES
from services.cluster import Cluster
from services.simulate import run_simulation
from shared.kafka_broker import KafkaCluster
from shared.kafka_node import unavailable_reason
from tests.faults.conftest import COHORT, COHORT_DAYS, SEED, assert_same_events

pytestmark = pytest.mark.infra

#: (kill day, restart day): each broker stays down two simulated days of traffic
OUTAGES = ((10, 12), (30, 32))


def broker_crashes(cluster: Cluster, log: list[str]):  # type: ignore[no-untyped-def]
    assert cluster.stack is not None and isinstance(cluster.stack.broker, KafkaCluster)
    kafka = cluster.stack.broker
    killed: list[int] = []

    async def on_day(n: int) -> None:
        for kill_day, restart_day in OUTAGES:
            if n == kill_day:
                await kafka.wait_in_sync()  # the previous victim has caught up
                counts = await kafka.leader_counts()
                victim = max((i for i in counts if i not in killed), key=lambda i: counts[i])
                kafka.node(victim).kill()
                killed.append(victim)
                log.append(f"day {n}: SIGKILL node {victim}, leader of {counts[victim]} partitions")
            if n == restart_day:
                await asyncio.to_thread(kafka.restart_node, killed[-1])
                log.append(f"day {n}: node {killed[-1]} restarted on its data")

    return on_day


def test_three_brokers_lose_and_duplicate_nothing_when_leaders_are_killed(
    clean_cohort, tmp_path_factory
):
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"the three-broker cluster needs Apache Kafka: {reason}")
    log: list[str] = []
    faulty = run_simulation(
        COHORT,
        COHORT_DAYS,
        SEED,
        tmp_path_factory.mktemp("replicated"),
        progress=False,
        faults=lambda cluster: broker_crashes(cluster, log),
        brokers=3,
    )
    print("\n".join(log))
    kills = [re.search(r"SIGKILL node (\d+), leader of (\d+)", line) for line in log]
    victims = [(int(m[1]), int(m[2])) for m in kills if m]
    assert len(victims) == 2 and victims[0][0] != victims[1][0], log  # two brokers
    assert all(led > 0 for _, led in victims), "a victim led no partition"
    assert sum("restarted" in line for line in log) == 2, log
    assert clean_cohort["truth"] == faulty["truth"] == {"missed": [], "spurious": []}
    assert faulty["dead_letters"] == dict.fromkeys(SERVICES, 0)
    assert_same_events(clean_cohort, faulty)
