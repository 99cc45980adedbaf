"""``ntx simulate``: a seeded cohort through the three services matches the ground
truth the simulator knows: every alert it caused was raised as often as caused,
every alert raised had a cause.

The pure checks run the simulator's own inputs through the real intake and schedule
rules, so the surgery, deferred and resume expectations rest on what the services
compute."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import date, datetime, time, timedelta

import pytest

from services.intake.domain.rules import evaluate
from services.scheduler.domain import apply_procedure, due_items, new_state
from services.simulate import (
    FIRST_DAY,
    START,
    ZONE,
    Patient,
    cohort,
    day_events,
    ground_truth,
    run_simulation,
)
from services.simulation.cohort import RESUME_AFTER_STOP, SECOND_STOP_AFTER_RESUME
from services.simulation.truth import (
    BLOCKADE_AT_PROCEDURE,
    DISCONTINUED,
    HEPATOTOXICITY,
    MISSED_DOSE,
    OPIOID_USE,
    TOLERANCE_LOST,
    check,
)
from shared.envelope import parse
from shared.events import IntakeRequested, ProcedureScheduled
from shared.ingress import FUTURE_TIME_SKEW
from shared.localtime import to_utc
from shared.outbox import encode
from shared.topics import ALERTS, INTAKE_DECISIONS, SCHEDULE

ALL_BEHAVIOURS = {
    "adherent",
    "gap",
    "late_5",
    "surgery",
    "deferred",
    "refuse",
    "late_surgery",
    "stop_resume",
    "stale",
    "adopted",
}


def test_cohort_and_truth_are_a_function_of_the_seed():
    a, b = cohort(400, 60, seed=5), cohort(400, 60, seed=5)
    assert [(p.id, p.behaviour, p.event_day) for p in a] == [
        (p.id, p.behaviour, p.event_day) for p in b
    ]
    assert {p.behaviour for p in a} >= ALL_BEHAVIOURS
    assert not ground_truth(next(p for p in a if p.behaviour == "adherent"), 20)


def test_every_event_the_simulator_sends_is_valid_input():
    for p in cohort(200, 40, seed=3):
        for n in range(FIRST_DAY, 40):
            for e in day_events(p, n, 40):
                parse(encode(e))  # the services' own envelope and model checks


def test_xr_surgery_only_in_runs_long_enough_for_its_held_injection():
    short, long = cohort(200, 20, seed=5), cohort(200, 40, seed=5)
    assert not [p for p in short if p.formulation == "xr" and p.behaviour in ("surgery", "refuse")]
    xr = [p for p in long if p.formulation == "xr" and p.behaviour == "surgery"]
    assert xr and all(2 <= p.event_day < 28 for p in xr)  # the notice precedes day 28


def _request(p: Patient, day: int, days: int) -> IntakeRequested:
    (intake,) = [e for e in day_events(p, day, days) if e["type"] == "ntx.intake.requested.v1"]
    return IntakeRequested.model_validate_json(json.dumps(intake["data"]))


def _schedule(p: Patient, days: int) -> list:
    """The items the real schedule rules give ``p`` inside a ``days``-day run, the
    procedure applied as the simulator announces it."""
    plan = evaluate(_request(p, 0, days), START).plan
    assert plan is not None
    state = new_state(plan)
    (notice,) = [
        e for e in day_events(p, p.event_day, days) if e["type"] == "ntx.procedure.scheduled.v1"
    ]
    state = apply_procedure(
        state,
        ProcedureScheduled.model_validate_json(json.dumps(notice["data"])),
        datetime.fromisoformat(notice["time"]),
    )
    end = to_utc(datetime.combine(START + timedelta(days=days), time(0, 0)), "America/New_York")
    return due_items(state, to_utc(datetime.combine(START, time(0, 0)), "America/New_York"), end)


def _local_day(item) -> date:  # type: ignore[no-untyped-def]
    d = item.due_local
    return d.date() if isinstance(d, datetime) else d


def _given(p: Patient, days: int) -> set[int]:
    return {
        n
        for n in range(FIRST_DAY, days)
        for e in day_events(p, n, days)
        if e["type"].endswith(".administered.v1")
    }


@pytest.mark.parametrize("formulation, days", [("oral", 10), ("oral", 40), ("xr", 40)])
def test_surgery_holds_what_the_patient_skips(formulation, days):
    patients = [
        p
        for p in cohort(200, days, seed=5)
        if p.formulation == formulation and p.behaviour == "surgery"
    ]
    assert patients
    for p in patients:
        assert ground_truth(p, days) == Counter({TOLERANCE_LOST: 1})
        procedure = START + timedelta(days=p.procedure_day)
        assert p.event_day < p.procedure_day <= days - 2  # notice, procedure, notice inside
        items = _schedule(p, days)
        held = [i for i in items if i.type in ("ntx.dose.held.v1", "ntx.injection.held.v1")]
        reinduction = [i for i in items if i.type == "ntx.reinduction.required.v1"]
        assert [_local_day(i) for i in reinduction] == [procedure + timedelta(days=1)]
        # nothing is due after the procedure but the re-induction notice
        assert not [i for i in items if _local_day(i) > procedure and i not in reinduction]
        if formulation == "oral":
            held_days = {(_local_day(i) - START).days for i in held}
            # a dose due before the notice arrived was due, and taken
            assert {d for d in held_days if d > p.event_day} == p.held_days
            assert p.held_days >= {p.procedure_day - k for k in (3, 2, 1, 0)}
            assert _given(p, days) == set(range(p.procedure_day)) - p.held_days
        else:
            assert [(i.type, _local_day(i)) for i in held] == [
                ("ntx.injection.held.v1", START + timedelta(days=28))
            ]
            assert _given(p, days) == {0}  # the day-0 injection; the held one is not given


def test_a_dose_the_rules_would_hold_but_already_due_at_the_notice_is_taken():
    """New York springs forward on 8 March: before an operation on 11 March the 7 March
    dose (P-4) blocks past 09:00 on P-3, so the rules hold it; but the notice comes at
    09:20 on 7 March, after that dose fell due, so the patient takes it."""
    p = Patient("sim-dst", "oral", "surgery", 5)
    assert p.procedure_day == 9
    held = {(_local_day(i) - START).days for i in _schedule(p, 20) if i.type == "ntx.dose.held.v1"}
    assert held == {5, 6, 7, 8, 9}
    assert p.held_days == {6, 7, 8, 9} and 5 in _given(p, 20)
    assert ground_truth(p, 20) == Counter({TOLERANCE_LOST: 1})


def test_deferred_patient_starts_on_the_earliest_start_date():
    days = 10
    p = next(p for p in cohort(60, days, seed=0) if p.behaviour == "deferred")
    assert not ground_truth(p, days)
    request = _request(p, 0, days)
    first = evaluate(request, START)
    assert first.decision == "deferred"
    assert [r.code for r in first.reasons] == ["opioid_free_window_not_met"]
    assert first.earliest_start_date == START + timedelta(days=2)
    again = evaluate(request, first.earliest_start_date)
    assert again.decision == "accepted" and again.plan is not None
    assert sorted(_given(p, days)) == list(range(2, days))  # nothing before, then every day
    assert day_events(p, 2, days)[0]["data"]["dose_mg"] == 25  # induction on the first day


def test_stop_and_resume_goes_through_intake_again():
    days = 60
    p = next(p for p in cohort(300, days, seed=2) if p.behaviour == "stop_resume")
    resume = p.event_day + RESUME_AFTER_STOP
    second = resume + SECOND_STOP_AFTER_RESUME
    decided = evaluate(_request(p, resume, days), START + timedelta(days=resume))
    assert decided.decision == "accepted"
    stops = [n for n in range(days) for e in day_events(p, n, days) if "stopped" in e["type"]]
    assert stops == [p.event_day] + ([second] if second < days else [])
    given = _given(p, days)
    assert not given & set(range(p.event_day, resume)) and resume in given
    assert ground_truth(p, days)[DISCONTINUED] == len(stops)


def test_late_surgery_is_reported_the_day_after_and_expects_its_alerts():
    days = 30
    p = next(p for p in cohort(300, days, seed=2) if p.behaviour == "late_surgery")
    (notice,) = [
        e
        for n in range(days)
        for e in day_events(p, n, days)
        if e["type"] == "ntx.procedure.scheduled.v1"
    ]
    assert notice["data"]["date"] == (START + timedelta(days=p.event_day)).isoformat()
    assert notice["time"].startswith((START + timedelta(days=p.event_day + 1)).isoformat())
    assert max(_given(p, days)) == p.event_day - 1
    assert ground_truth(p, days) == Counter(
        {MISSED_DOSE: 1, BLOCKADE_AT_PROCEDURE: 1, TOLERANCE_LOST: 1}
    )


def test_stale_results_arrive_out_of_specimen_order():
    days = 30
    p = next(p for p in cohort(400, days, seed=2) if p.behaviour == "stale")
    results = [
        (e["type"], e["data"]["collected_at"], e["time"])
        for n in range(days)
        for e in day_events(p, n, days)
        if e["type"] in ("ntx.uds.resulted.v1", "ntx.lab.resulted.v1")
    ]
    screens = [r for r in results if r[0] == "ntx.uds.resulted.v1"]
    assert screens[1][1] < screens[0][1] < screens[0][2]  # collected before the first
    assert ground_truth(p, days) == Counter({OPIOID_USE: 1, HEPATOTOXICITY: 1})


def test_adopted_patients_enrol_the_day_before_the_alerts_service_starts():
    days = 10
    p = next(p for p in cohort(300, days, seed=2) if p.behaviour == "adopted")
    assert [e["type"] for e in day_events(p, FIRST_DAY, days)] == [
        "ntx.intake.requested.v1",
        "ntx.dose.administered.v1",
    ]
    assert FIRST_DAY in _given(p, days) and p.event_day not in _given(p, days)
    assert ground_truth(p, days) == Counter({MISSED_DOSE: 1})


def test_the_check_counts_repeats():
    p = Patient("p", "oral", "stop_resume", 2)
    raised = [
        {"type": "ntx.alert.raised.v1", "subject": "p", "data": {"alert": a, "reason": r}}
        for a, r in (DISCONTINUED, DISCONTINUED, DISCONTINUED)
    ]
    found = check([p], raised, 60)
    assert found == {"missed": [], "spurious": [("p", *DISCONTINUED)]}
    assert check([p], raised[:1], 60)["missed"] == [("p", *DISCONTINUED)]


@pytest.mark.infra
def test_small_cohort_has_no_missed_and_no_spurious_alerts(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="aiokafka")
    days = 10
    result = run_simulation(40, days, seed=0, data_dir=tmp_path, progress=False)
    assert result["truth"] == {"missed": [], "spurious": []}
    # the cluster's probes look each group's coordinator up again on purpose, quietly
    assert not [r for r in caplog.records if "coordinator dead" in r.getMessage()]
    raised = [e for e in result["events"][ALERTS.name] if e["type"] == "ntx.alert.raised.v1"]
    assert len(raised) >= 10  # the cohort does cause alerts: the check is not vacuous
    patients = result["patients"]
    adopted = [p for p in patients if p.behaviour == "adopted"]
    assert result["adopted"] >= len(adopted) >= 1  # never seen their plan, not dropped
    for p in [p for p in patients if p.behaviour == "surgery" and p.formulation == "oral"]:
        schedule = [e for e in result["events"][SCHEDULE.name] if e["subject"] == p.id]
        held = {e["data"]["due_local"][:10] for e in schedule if e["type"] == "ntx.dose.held.v1"}
        assert held == {(START + timedelta(days=k)).isoformat() for k in p.held_days}
    for p in [p for p in patients if p.behaviour == "deferred"]:
        decisions = [
            e["data"] for e in result["events"][INTAKE_DECISIONS.name] if e["subject"] == p.id
        ]
        assert [d["decision"] for d in decisions] == ["deferred", "accepted"]
        assert decisions[0]["earliest_start_date"] == decisions[1]["plan"]["start_date"]


class _ClockOnly:
    """The cluster as the driver sees it, keeping only the clock: what each send would
    look like to a service reading that clock."""

    def __init__(self, start: datetime):
        self.now = start
        self.ahead: list[dict] = []

    async def advance(self, to: datetime, **_: object) -> None:
        self.now = max(self.now, to)

    async def send(self, events: list[dict]) -> None:
        limit = self.now + FUTURE_TIME_SKEW
        self.ahead += [e for e in events if datetime.fromisoformat(e["time"]) > limit]

    async def start_service(self, name: str, **_: object) -> None: ...

    async def settle(self) -> None: ...

    async def close_probes(self) -> None: ...


def test_nothing_is_sent_stamped_ahead_of_the_services_clock():
    """A message stamped more than 5 minutes ahead of the receiving clock is refused, so
    the driver never sends one: the alerts service's partition markers included."""
    import asyncio

    from services.simulate import MARKERS_AT, drive, markers

    start = to_utc(datetime.combine(START + timedelta(days=FIRST_DAY), time(5, 0)), ZONE)
    cluster = _ClockOnly(start)
    asyncio.run(drive(cluster, cohort(40, 10, 3), 10, progress=False))  # type: ignore[arg-type]
    assert cluster.ahead == []
    assert {datetime.fromisoformat(m["time"]) for m in markers()} == {MARKERS_AT}
