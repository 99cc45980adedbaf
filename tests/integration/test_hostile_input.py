"""Hostile input on every inbound topic, mixed into good traffic: each bad message
lands in ntx.dlq.v1 with a reason, every service stays healthy, and the good
messages are handled as if the bad ones had never been sent."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.bootstrap import load_spec
from shared import db
from shared.clock import SimulatedClock
from shared.topics import (
    CLINICAL_EVENTS,
    DELIVERIES,
    DLQ,
    INTAKE_DECISIONS,
    INTAKE_REQUESTS,
    NOTIFICATIONS,
    SCHEDULE,
    event_type,
)
from tests.hostile import CONSUMED, NOW, OFF_KEY, applies, hostile, refused_by, valid
from tests.integration.harness import Harness, eventually, produce, read_topic
from tests.unit.event_examples import EXAMPLES

pytestmark = pytest.mark.infra


#: The inputs of issue 18 that once stopped a service or raised an OverflowError.
ISSUE_18 = [
    ("tombstone",),
    ("nul_key",),
    ("nul_id",),
    ("nul_source",),
    ("nul_data",),
    ("surrogate",),
    ("future_time",),
    ("year_one_time",),
    ("implausible_date",),
    ("huge_number",),
    ("deep", 1000),
    ("oversize", 800_000),
]
#: One type per inbound topic (intake's, the clinical events', and the decisions and
#: schedule that other services publish): each gets every input of issue 18, on top
#: of what hypothesis draws.
PER_TOPIC = [
    "ntx.intake.requested.v1",
    "ntx.dose.administered.v1",
    "ntx.intake.accepted.v1",
    "ntx.dose.due.v1",
]
FIXED = [(t, m) for t in PER_TOPIC for m in ISSUE_18 if applies(t, m)]


def mutations(type_: str) -> st.SearchStrategy:
    fields = [k for k in EXAMPLES[type_] if k != "patient_id"]
    # null is left out: optional fields accept it
    wrong = st.sampled_from([123, "x", True, [1], {"k": 1}])
    return st.one_of(
        st.tuples(st.just("truncated"), st.integers(1, 60)),
        st.tuples(st.just("wrong_type"), st.sampled_from(fields), wrong),
        st.tuples(
            st.just("unknown_type"), st.sampled_from(["ntx.dose.eaten.v1", "ntx.x.v9", "dose"])
        ),
        st.tuples(st.just("unknown_field"), st.text("abcdefgh", min_size=3, max_size=8)),
        st.tuples(st.just("wrong_key"), st.just(None)),
        st.tuples(st.just("missing_key"), st.just(None)),
        st.tuples(st.just("oversize"), st.just(None)),
        st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("far_future"), st.just(None)),
        st.tuples(st.just("reused_id"), st.just(None)),
        *[st.just(kind) for kind in ISSUE_18 if applies(type_, kind)],
        st.tuples(st.just("deep"), st.integers(300, 2000)),
    )


BATCH: list[tuple[str, object]] = []


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,  # the same hostile batch on every run
)
@given(st.sampled_from(CONSUMED).flatmap(lambda t: st.tuples(st.just(t), mutations(t))))
def test_generate_hostile_batch(case):
    """Hypothesis draws the hostile cases; the async test below sends them."""
    BATCH.append(case)


async def test_hostile_messages_are_dead_lettered_and_good_ones_handled(infra, unique):
    assert BATCH, "the generator test runs first in this module"
    cases = BATCH + FIXED
    clock = SimulatedClock(NOW)
    harnesses = [
        Harness(load_spec(name), infra, f"{name}_{unique}", clock=clock)
        for name in ("intake", "scheduler", "alerts", "notifier")
    ]
    for h in harnesses:
        await h.__aenter__()
    try:
        sent_bad = 0
        good: list[str] = []
        for n, (type_, mutation) in enumerate(cases):
            patient = f"h{n}-{unique}"
            topic = event_type(type_).topic.name
            good_msg = valid(type_, patient, 0)
            await produce(infra.bootstrap, topic, patient.encode(), json.dumps(good_msg).encode())
            key, value = hostile(type_, patient, n + 1, mutation)
            await produce(infra.bootstrap, topic, key, value)
            sent_bad += 1
            good.append(patient)
        intake, scheduler, alerts, notifier = harnesses
        consumers = {
            NOTIFICATIONS.name: [notifier],
            INTAKE_REQUESTS.name: [intake],
            CLINICAL_EVENTS.name: [scheduler, alerts],
            INTAKE_DECISIONS.name: [scheduler],  # a forged decision arrives here too
            SCHEDULE.name: [alerts],
            DELIVERIES.name: [alerts],  # delivery outcomes the notifier publishes
        }
        assert await eventually(lambda: _all_seen(cases, unique, consumers), timeout=90)
        for h in harnesses:
            assert (await h.runtime.health())["ok"]
    finally:
        for h in harnesses:
            await h.__aexit__(None, None, None)
    for n, (type_, mutation) in enumerate(cases):
        patient = f"h{n}-{unique}"
        topic = event_type(type_).topic.name
        for h in consumers[topic]:
            # the topic's own: the notifier's outcomes of the alerts a good message
            # raised reach the alerts service too, on ntx.deliveries.v1
            outcomes = h.outcomes_for(patient, topic)
            spec = h.runtime.spec
            good = "handled" if spec.handles is None or type_ in spec.handles else "ignored"
            if mutation[0] in OFF_KEY:
                expected = [good]  # the bad copy is keyed to someone else, or to no one
            else:
                expected = [good, "dead" if refused_by(spec, type_, mutation) else "ignored"]
            assert outcomes == expected, (type_, mutation, outcomes)
    for h in harnesses:
        off_key = [
            o for o, k in h.outcomes if k is None or k == b"someone-else" or k.endswith(b"\x00")
        ]
        assert set(off_key) <= {"dead"}
    letters = await read_topic(
        infra.bootstrap, DLQ.name, until=lambda ms: len(ms) >= sent_bad, timeout=30
    )
    reasons = [json.loads(m.value)["reason"] for m in letters]
    assert len(letters) >= sent_bad and all(reasons)
    for h in harnesses:  # every letter of this run names the field at fault
        conn = await db.connect(infra.database_url, h.runtime.schema)
        try:
            unnamed = await conn.fetchval("SELECT count(*) FROM dead_letters WHERE field IS NULL")
        finally:
            await conn.close()
        assert unnamed == 0, h.runtime.schema


async def _all_seen(batch, unique, consumers) -> bool:
    for n, (type_, mutation) in enumerate(batch):
        patient = f"h{n}-{unique}"
        topic = event_type(type_).topic.name
        for h in consumers[topic]:
            seen = h.outcomes_for(patient, topic)
            wrong_key = mutation[0] == "wrong_key" and h.outcomes_for("someone-else")
            nul_key = mutation[0] == "nul_key" and h.outcomes_for(patient + "\x00")
            no_key = mutation[0] == "missing_key" and [o for o, k in h.outcomes if k is None]
            if not seen or (len(seen) < 2 and not wrong_key and not no_key and not nul_key):
                return False
    return True
