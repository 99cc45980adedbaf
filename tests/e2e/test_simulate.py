"""``ntx simulate``: a seeded cohort through the three services matches the ground
truth the simulator knows: every lapse it caused was alerted, every alert had a cause.

The pure checks run the simulator's own inputs through the real intake and schedule
rules, so the surgery and deferred expectations rest on what the services compute."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

import pytest

from services.intake.domain.rules import evaluate
from services.scheduler.domain import apply_procedure, due_items, new_state
from services.simulate import START, Patient, cohort, day_events, ground_truth, run_simulation
from shared.events import IntakeRequested, ProcedureScheduled
from shared.localtime import to_utc
from shared.topics import ALERTS, INTAKE_DECISIONS, SCHEDULE


def test_cohort_and_truth_are_a_function_of_the_seed():
    a, b = cohort(40, 20, seed=5), cohort(40, 20, seed=5)
    assert [(p.id, p.behaviour, p.event_day) for p in a] == [
        (p.id, p.behaviour, p.event_day) for p in b
    ]
    assert {p.behaviour for p in a} >= {"adherent", "gap", "late_5", "surgery", "deferred"}
    assert ground_truth(next(p for p in a if p.behaviour == "adherent"), 20) == set()


def test_xr_surgery_only_in_runs_long_enough_for_its_held_injection():
    short, long = cohort(200, 20, seed=5), cohort(200, 40, seed=5)
    assert not [p for p in short if p.formulation == "xr" and p.behaviour == "surgery"]
    xr = [p for p in long if p.formulation == "xr" and p.behaviour == "surgery"]
    assert xr and all(2 <= p.event_day < 28 for p in xr)  # the notice precedes day 28


def _request(p: Patient, days: int) -> IntakeRequested:
    (intake,) = [e for e in day_events(p, 0, days) if e["type"] == "ntx.intake.requested.v1"]
    return IntakeRequested.model_validate_json(json.dumps(intake["data"]))


def _schedule(p: Patient, days: int) -> list:
    """The items the real schedule rules give ``p`` inside a ``days``-day run, the
    procedure applied as the simulator announces it."""
    plan = evaluate(_request(p, days), START).plan
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


@pytest.mark.parametrize("formulation, days", [("oral", 10), ("oral", 40), ("xr", 40)])
def test_surgery_holds_what_the_patient_skips_and_expects_no_alert(formulation, days):
    patients = [
        p
        for p in cohort(200, days, seed=5)
        if p.formulation == formulation and p.behaviour == "surgery"
    ]
    assert patients
    for p in patients:
        assert ground_truth(p, days) == set()
        procedure = START + timedelta(days=p.procedure_day)
        assert p.event_day < p.procedure_day <= days - 2  # notice, procedure, notice inside
        items = _schedule(p, days)
        held = [i for i in items if i.type in ("ntx.dose.held.v1", "ntx.injection.held.v1")]
        reinduction = [i for i in items if i.type == "ntx.reinduction.required.v1"]
        assert [_local_day(i) for i in reinduction] == [procedure + timedelta(days=1)]
        # nothing is due after the procedure but the re-induction notice
        assert not [i for i in items if _local_day(i) > procedure and i not in reinduction]
        given = {
            n
            for n in range(days)
            for e in day_events(p, n, days)
            if e["type"].endswith(".administered.v1")
        }
        if formulation == "oral":
            assert [_local_day(i) for i in held] == [
                procedure - timedelta(days=k) for k in (3, 2, 1, 0)
            ]
            # the hold starts after the notice; every dose due before it is taken
            assert (_local_day(held[0]) - START).days > p.event_day
            assert given == set(range(p.procedure_day - 3))
        else:
            assert [(i.type, _local_day(i)) for i in held] == [
                ("ntx.injection.held.v1", START + timedelta(days=28))
            ]
            assert given == {0}  # the day-0 injection; the held one is not given


def test_deferred_patient_starts_on_the_earliest_start_date():
    days = 10
    (p,) = [p for p in cohort(16, days, seed=0) if p.behaviour == "deferred"]
    assert ground_truth(p, days) == set()
    request = _request(p, days)
    first = evaluate(request, START)
    assert first.decision == "deferred"
    assert [r.code for r in first.reasons] == ["opioid_free_window_not_met"]
    assert first.earliest_start_date == START + timedelta(days=2)
    again = evaluate(request, first.earliest_start_date)
    assert again.decision == "accepted" and again.plan is not None
    given = [n for n in range(days) for e in day_events(p, n, days) if "administered" in e["type"]]
    assert given == list(range(2, days))  # nothing before acceptance, then every day
    assert day_events(p, 2, days)[0]["data"]["dose_mg"] == 25  # induction on the first day


@pytest.mark.infra
def test_small_cohort_has_no_missed_and_no_spurious_alerts(tmp_path):
    days = 10
    result = run_simulation(16, days, seed=0, data_dir=tmp_path, progress=False)
    assert result["truth"] == {"missed": [], "spurious": []}
    raised = [e for e in result["events"][ALERTS.name] if e["type"] == "ntx.alert.raised.v1"]
    assert len(raised) >= 5  # the cohort does cause alerts: the check is not vacuous
    patients = result["patients"]
    (surgery,) = [p for p in patients if p.behaviour == "surgery"]
    (deferred,) = [p for p in patients if p.behaviour == "deferred"]
    schedule = [e for e in result["events"][SCHEDULE.name] if e["subject"] == surgery.id]
    procedure = START + timedelta(days=surgery.procedure_day)
    held = [e["data"]["due_local"][:10] for e in schedule if e["type"] == "ntx.dose.held.v1"]
    assert held == [(procedure - timedelta(days=k)).isoformat() for k in (3, 2, 1, 0)]
    assert [e["data"]["due_local"] for e in schedule if "reinduction" in e["type"]] == [
        (procedure + timedelta(days=1)).isoformat()
    ]
    decisions = [
        e["data"] for e in result["events"][INTAKE_DECISIONS.name] if e["subject"] == deferred.id
    ]
    assert [d["decision"] for d in decisions] == ["deferred", "accepted"]
    assert decisions[0]["earliest_start_date"] == decisions[1]["plan"]["start_date"]
    assert not [e for e in raised if e["subject"] in (surgery.id, deferred.id)]
