"""Revision 2 schedule rules (DESIGN.md §4.2 r2), both sides of each boundary:
coverage-aware holds, late-reported procedures, site checks after held injections,
monthly liver tests, recurring reviews and DST gaps shown as the moved time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.scheduler.domain import (
    apply_lab,
    apply_procedure,
    apply_stop,
    due_items,
    new_state,
    schedule_ends,
)
from shared.events import LabResulted, ProcedureScheduled, TreatmentStopped
from shared.localtime import local_midnight_utc
from tests.unit.scheduler.test_schedule import lines, plan

LONDON = "Europe/London"


def held_days(p, days: int = 40) -> list[str]:
    return [x["due_local"][:10] for x in lines(p, days) if x["type"] == "dose.held"]


def given_days(p, days: int = 40) -> dict[str, int]:
    return {x["due_local"][:10]: x["dose_mg"] for x in lines(p, days) if x["type"] == "dose.due"}


def surgery(day: str) -> list[dict]:
    return [{"date": day, "requires_opioid_analgesia": True}]


def mwf(procedure: str):
    # Monday 2 March, no induction and no step-up: 100/100/150 from the first day
    return plan(
        oral_regimen="mwf", induction_days=0, mwf_step_days=0, planned_procedures=surgery(procedure)
    )


def test_friday_150_mg_is_held_before_a_tuesday_operation():
    # Tuesday 17 March: P-3 is Saturday 14th; Friday 13th's 150 mg blocks until Monday
    p = mwf("2026-03-17")
    assert held_days(p) == ["2026-03-13", "2026-03-16"]
    assert given_days(p)["2026-03-11"] == 100  # Wednesday's 48 h end on Friday: given


@pytest.mark.parametrize(
    "procedure, wednesday_held",
    [
        # Monday 16th: P-3 is Friday 13th 09:00, exactly when Wednesday's 48 h end
        ("2026-03-16", False),
        # Sunday 15th: P-3 is Thursday 12th 09:00; Wednesday's blockade lasts past it
        ("2026-03-15", True),
    ],
)
def test_a_dose_is_held_only_when_its_blockade_lasts_past_p_minus_3(procedure, wednesday_held):
    assert ("2026-03-11" in held_days(mwf(procedure))) is wednesday_held


@pytest.mark.parametrize(
    "procedure, start, p_minus_4_held",
    [
        # London springs forward on 29 March: 24 h after 09:00 GMT on the 28th is
        # 10:00 BST on P-3, past the 09:00 dose time: P-4 is held too
        ("2026-04-01", "2026-03-20", True),
        # and falls back on 25 October: 24 h after 09:00 BST is 08:00 GMT, before it
        ("2026-10-28", "2026-10-15", False),
    ],
)
def test_holds_count_elapsed_blockade_across_dst(procedure, start, p_minus_4_held):
    p = plan(start_date=start, planned_procedures=surgery(procedure))
    day = date.fromisoformat(procedure)
    p_minus_4 = (day - timedelta(days=4)).isoformat()
    held = held_days(p)
    assert held[-4:] == [(day - timedelta(days=k)).isoformat() for k in (3, 2, 1, 0)]
    assert (p_minus_4 in held) is p_minus_4_held


def test_a_plain_week_holds_p_minus_3_to_p():
    p = plan(planned_procedures=surgery("2026-03-20"))
    assert held_days(p) == ["2026-03-17", "2026-03-18", "2026-03-19", "2026-03-20"]


def test_doses_after_the_procedure_day_are_not_held_but_suspended():
    p = plan(planned_procedures=surgery("2026-03-20"))
    assert "2026-03-21" not in held_days(p) and "2026-03-21" not in given_days(p)


def test_no_site_check_after_a_held_injection():
    # injections 2 March (given) and 30 March (within 30 days of 20 April: held)
    p = plan(formulation="xr", planned_procedures=surgery("2026-04-20"))
    checks = [x["due_local"] for x in lines(p, 60) if x["type"] == "site_check.due"]
    held = [x["due_local"][:10] for x in lines(p, 60) if x["type"] == "injection.held"]
    assert held == ["2026-03-30"] and checks == ["2026-03-16"]
    unheld = plan(formulation="xr", planned_procedures=surgery("2026-05-01"))  # 32 days
    checks = [x["due_local"] for x in lines(unheld, 60) if x["type"] == "site_check.due"]
    assert checks == ["2026-03-16", "2026-04-13"]


def test_a_dose_time_in_a_dst_gap_is_shown_and_due_at_the_moved_time():
    p = plan(timezone="America/New_York", start_date="2026-03-07", dose_time="02:30")
    got = [(x["due_local"], x["due_utc"]) for x in lines(p, 3, "dose.due")]
    assert got == [
        ("2026-03-07T02:30", "2026-03-07T07:30:00Z"),
        ("2026-03-08T03:30", "2026-03-08T07:30:00Z"),  # 02:30 does not exist that night
        ("2026-03-09T02:30", "2026-03-09T06:30:00Z"),
    ]


@pytest.mark.parametrize("interval", [1, 3, 6])
def test_elevated_transaminases_advisory_makes_liver_tests_monthly(interval):
    p = plan(
        start_date="2026-01-31",
        lft_interval_months=interval,
        advisories=["transaminases_over_3x_uln", "naloxone_kit_recommended"],
    )
    assert [x["due_local"] for x in lines(p, 90, "lab.due")] == [
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
    ]


def lab(collected: datetime, alt: str) -> LabResulted:
    return LabResulted(
        patient_id="p",
        collected_at=collected,
        alt=Decimal(alt),
        ast=Decimal(20),
        alt_uln=Decimal("40.1"),
        ast_uln=Decimal(40),
    )


def lab_days(state) -> list[str]:
    start = local_midnight_utc(date(2026, 1, 10), LONDON)
    return [
        i.due_local.isoformat()
        for i in due_items(state, start, start + timedelta(days=240))
        if i.type == "ntx.lab.due.v1"
    ]


@pytest.mark.parametrize("alt, monthly", [("120.3", True), ("120.2", False)])
def test_a_result_at_3x_uln_during_treatment_makes_liver_tests_monthly(alt, monthly):
    state = new_state(plan(start_date="2026-01-10"))
    state = apply_lab(state, lab(datetime(2026, 2, 20, 10, tzinfo=UTC), alt))
    expected = (
        ["2026-03-10", "2026-04-10", "2026-05-10", "2026-06-10", "2026-07-10", "2026-08-10"]
        if monthly
        else ["2026-04-10", "2026-07-10"]
    )
    assert lab_days(state) == expected


@pytest.mark.parametrize(
    "collected, counts",
    [
        (datetime(2026, 1, 9, 23, 59, tzinfo=UTC), False),  # before the plan's start
        (datetime(2026, 1, 10, 0, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 1, 11, 59, tzinfo=UTC), True),  # before the stop
        (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), False),  # at the stop
    ],
)
def test_only_results_during_treatment_make_tests_monthly(collected, counts):
    state = new_state(plan(start_date="2026-01-10"))
    stop = TreatmentStopped(
        patient_id="p", stopped_at=datetime(2026, 3, 1, 12, tzinfo=UTC), reason="x"
    )
    state = apply_lab(apply_stop(state, stop), lab(collected, "200"))
    assert (state.lft_monthly_from is not None) is counts


def test_a_lower_later_result_never_makes_tests_rarer():
    state = new_state(plan(start_date="2026-01-10"))
    state = apply_lab(state, lab(datetime(2026, 2, 20, tzinfo=UTC), "200"))
    again = apply_lab(state, lab(datetime(2026, 3, 20, tzinfo=UTC), "20"))
    assert again.lft_monthly_from == date(2026, 2, 20)


@pytest.mark.parametrize(
    "months, reviews",
    [
        (3, ["2026-06-02", "2026-09-02", "2026-12-02", "2027-03-02"]),
        (6, ["2026-09-02", "2027-03-02"]),
        (12, ["2027-03-02"]),
    ],
)
def test_treatment_reviews_recur(months, reviews):
    p = plan(start_date="2026-03-02", review_after_months=months)
    assert [x["due_local"] for x in lines(p, 366, "treatment.review.due")] == reviews


def procedure(day: date) -> ProcedureScheduled:
    return ProcedureScheduled(patient_id="p", date=day, requires_opioid_analgesia=True)


@pytest.mark.parametrize(
    "reported, notice_due",
    [
        # reported on the procedure day: the notice is due at midnight as planned
        (datetime(2026, 3, 20, 10, 0, tzinfo=UTC), datetime(2026, 3, 21, 0, 0, tzinfo=UTC)),
        # reported when P+1 has begun (00:00 London): due at once
        (datetime(2026, 3, 21, 0, 0, 1, tzinfo=UTC), datetime(2026, 3, 21, 0, 0, 1, tzinfo=UTC)),
        # a week late: due at once, whatever stretch of days is materialised
        (datetime(2026, 3, 28, 9, 0, tzinfo=UTC), datetime(2026, 3, 28, 9, 0, tzinfo=UTC)),
    ],
)
def test_late_reported_procedure_emits_reinduction_at_once_once_p1_began(reported, notice_due):
    state = apply_procedure(new_state(plan()), procedure(date(2026, 3, 20)), reported)
    items = due_items(state, reported, reported + timedelta(hours=48))
    notices = [i for i in items if i.type == "ntx.reinduction.required.v1"]
    assert [(i.due_utc, i.due_local) for i in notices] == [(notice_due, date(2026, 3, 21))]
    assert not [i for i in items if i.type == "ntx.dose.due.v1"]
    assert schedule_ends(state) > notice_due


def test_procedure_reported_on_its_day_holds_what_remains():
    reported = datetime(2026, 3, 20, 7, 0, tzinfo=UTC)  # before the 09:00 dose
    state = apply_procedure(new_state(plan()), procedure(date(2026, 3, 20)), reported)
    items = due_items(state, reported, reported + timedelta(hours=48))
    assert [(i.type, i.due_local.isoformat()) for i in items] == [
        ("ntx.dose.held.v1", "2026-03-20T09:00:00"),
        ("ntx.reinduction.required.v1", "2026-03-21"),
    ]
