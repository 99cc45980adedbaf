"""What the fault tests share: one fault-free run of the seeded cohort, which every
faulty run of the same seed must match event for event."""

from __future__ import annotations

import pytest

from services.simulate import run_simulation
from shared.topics import ALERTS, INTAKE_DECISIONS, NOTIFICATIONS, SCHEDULE

COHORT, COHORT_DAYS, SEED = 200, 60, 11
TOPICS = (INTAKE_DECISIONS, SCHEDULE, ALERTS, NOTIFICATIONS)


@pytest.fixture(scope="session")
def clean_cohort(tmp_path_factory) -> dict:
    """The cohort on a single broker with nothing going wrong."""
    return run_simulation(COHORT, COHORT_DAYS, SEED, tmp_path_factory.mktemp("c"), progress=False)


def assert_same_events(clean: dict, faulty: dict) -> None:
    """Every topic carries the same event ids in both runs: none lost, none extra, and
    none twice on the wire in the faulty one."""
    for topic in TOPICS:
        clean_ids = [e["id"] for e in clean["events"][topic.name]]
        faulty_ids = [e["id"] for e in faulty["events"][topic.name]]
        assert len(faulty_ids) == len(set(faulty_ids)), f"{topic.name}: duplicated on the wire"
        lost, extra = set(clean_ids) - set(faulty_ids), set(faulty_ids) - set(clean_ids)
        assert not lost and not extra, f"{topic.name}: lost {lost}, extra {extra}"
