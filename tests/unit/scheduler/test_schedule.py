"""Schedule rules (DESIGN.md §4.2): regimens, DST, month ends, holds, re-anchoring."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scheduler.cli import preview_lines
from services.scheduler.domain import (
    apply_injection,
    apply_procedure,
    apply_stop,
    due_items,
    new_state,
)
from services.scheduler.domain.schedule import add_months
from services.scheduler.horizon import event_data
from shared.events import InjectionAdministered, ProcedureScheduled, TreatmentPlan, TreatmentStopped
from shared.localtime import local_midnight_utc


def plan(**changes) -> TreatmentPlan:
    fields = {
        "patient_id": "p",
        "timezone": "Europe/London",
        "formulation": "oral",
        "oral_regimen": "daily",
        "induction_days": 1,
        "dose_time": "09:00",
        "start_date": "2026-03-02",
    }
    fields.update(changes)
    if fields["formulation"] == "xr":
        fields.update(oral_regimen=None, induction_days=None)
    return TreatmentPlan.model_validate_json(json.dumps(fields))


def lines(p: TreatmentPlan, days: int, kind: str | None = None) -> list[dict]:
    return [x for x in preview_lines(p, days) if kind is None or x["type"] == kind]


def doses(p: TreatmentPlan, days: int) -> list[tuple[str, int]]:
    return [(x["due_local"], x["dose_mg"]) for x in lines(p, days) if x["type"].startswith("dose.")]


@pytest.mark.parametrize("induction", [0, 1, 2, 3])
def test_daily_induction_then_50(induction):
    got = [mg for _, mg in doses(plan(induction_days=induction), 6)]
    assert got == [25] * induction + [50] * (6 - induction)


def test_mwf_regimen_steps_up_through_50_mg_daily_then_bridges():
    # 2026-03-03 is a Tuesday: two induction days, then 50 mg daily for the 7 step-up
    # days (5th to 11th); the first Mon/Wed/Fri on or after the 12th is Friday 13th,
    # so Thursday 12th is bridged at 50 mg
    got = doses(plan(oral_regimen="mwf", induction_days=2, start_date="2026-03-03"), 17)
    assert got == [
        ("2026-03-03T09:00", 25),
        ("2026-03-04T09:00", 25),
        *[(f"2026-03-{d:02d}T09:00", 50) for d in range(5, 13)],
        ("2026-03-13T09:00", 150),
        ("2026-03-16T09:00", 100),
        ("2026-03-18T09:00", 100),
    ]


@pytest.mark.parametrize(
    "step, first_mwf, first_mg",
    [
        (0, "2026-03-04", 100),
        (1, "2026-03-06", 150),
        (2, "2026-03-06", 150),
        (3, "2026-03-09", 100),
    ],
)
def test_mwf_step_days_both_sides(step, first_mwf, first_mg):
    # Tuesday start, 1 induction day: the step-up ends after start + 1 + step days
    got = doses(
        plan(oral_regimen="mwf", induction_days=1, start_date="2026-03-03", mwf_step_days=step),
        10,
    )
    big = [(day, mg) for day, mg in got if mg > 50]
    assert big[0] == (f"{first_mwf}T09:00", first_mg)
    assert all(mg in (25, 50) for day, mg in got if day < first_mwf)


def test_mwf_starting_on_a_monday_without_induction_or_step_has_no_bridge():
    first = doses(plan(oral_regimen="mwf", induction_days=0, mwf_step_days=0), 3)[0]
    assert first == ("2026-03-02T09:00", 100)


def test_xr_every_28_days_with_uds_and_site_check():
    p = plan(formulation="xr")
    inj = lines(p, 60, "injection.due")
    assert [x["due_local"] for x in inj] == [
        "2026-03-02T09:00",
        "2026-03-30T09:00",
        "2026-04-27T09:00",
    ]
    assert all(x["dose_mg"] == 380 for x in inj)
    items = due_items(
        new_state(p),
        local_midnight_utc(date(2026, 3, 2), "Europe/London"),
        datetime(2026, 3, 3, tzinfo=UTC),
    )
    assert items[0].requires_uds is True
    assert [x["due_local"] for x in lines(p, 60, "site_check.due")] == ["2026-03-16", "2026-04-13"]


@pytest.mark.parametrize(
    "zone, start, days_utc",
    [
        (
            "America/New_York",
            "2026-03-07",
            ["2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"],
        ),
        (
            "America/New_York",
            "2026-10-31",
            ["2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z"],
        ),
        (
            "Europe/London",
            "2026-03-28",
            ["2026-03-28T09:00:00Z", "2026-03-29T08:00:00Z", "2026-03-30T08:00:00Z"],
        ),
        (
            "Europe/London",
            "2026-10-24",
            ["2026-10-24T08:00:00Z", "2026-10-25T09:00:00Z", "2026-10-26T09:00:00Z"],
        ),
        (
            "Pacific/Auckland",
            "2026-04-04",
            ["2026-04-03T20:00:00Z", "2026-04-04T21:00:00Z", "2026-04-05T21:00:00Z"],
        ),
        (
            "Asia/Kolkata",
            "2026-03-02",
            ["2026-03-02T03:30:00Z", "2026-03-03T03:30:00Z", "2026-03-04T03:30:00Z"],
        ),
    ],
)
def test_dose_time_stays_local_across_dst(zone, start, days_utc):
    got = lines(plan(timezone=zone, start_date=start), 3, "dose.due")
    assert [x["due_local"][11:] for x in got] == ["09:00"] * 3
    assert [x["due_utc"] for x in got] == days_utc


def test_nonexistent_time_moves_forward_and_ambiguous_takes_first():
    gap = lines(
        plan(timezone="America/New_York", start_date="2026-03-08", dose_time="02:30"), 1, "dose.due"
    )
    assert gap[0]["due_utc"] == "2026-03-08T07:30:00Z"  # 03:30 EDT
    fold = lines(
        plan(timezone="America/New_York", start_date="2026-11-01", dose_time="01:30"), 1, "dose.due"
    )
    assert fold[0]["due_utc"] == "2026-11-01T05:30:00Z"  # 01:30 EDT, the first one


@pytest.mark.parametrize(
    "start, months, expected",
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 1, 31), 3, date(2026, 4, 30)),
        (date(2026, 1, 31), 6, date(2026, 7, 31)),
        (date(2027, 11, 30), 3, date(2028, 2, 29)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
    ],
)
def test_add_months_clamps_without_drift(start, months, expected):
    assert add_months(start, months) == expected


def test_liver_tests_same_day_clamped_and_review():
    p = plan(start_date="2026-01-31", lft_interval_months=3)
    assert [x["due_local"] for x in lines(p, 200, "lab.due")] == ["2026-04-30", "2026-07-31"]
    assert all(x["test"] == "lft" for x in lines(p, 200, "lab.due"))
    assert [x["due_local"] for x in lines(p, 200, "treatment.review.due")] == ["2026-07-31"]
    monthly = plan(start_date="2026-01-31", lft_interval_months=1)
    assert [x["due_local"] for x in lines(monthly, 70, "lab.due")] == ["2026-02-28", "2026-03-31"]


def test_urine_screens_weekly_after_start():
    assert [x["due_local"] for x in lines(plan(), 22, "uds.due")] == [
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
    ]


@pytest.mark.parametrize("before, held", [(4, False), (3, True), (1, True), (0, True)])
def test_oral_hold_before_surgery(before, held):
    surgery = date(2026, 3, 20)
    p = plan(planned_procedures=[{"date": str(surgery), "requires_opioid_analgesia": True}])
    day = (surgery - timedelta(days=before)).isoformat()
    kinds = {x["due_local"][:10]: x for x in lines(p, 30) if x["type"].startswith("dose.")}
    assert (kinds[day]["type"] == "dose.held") is held
    if held:
        assert kinds[day]["reason"] == "surgery_hold"


def test_schedule_suspended_after_surgery_with_reinduction_notice():
    p = plan(planned_procedures=[{"date": "2026-03-20", "requires_opioid_analgesia": True}])
    after = [x for x in lines(p, 40) if x["due_local"][:10] > "2026-03-20"]
    assert [(x["type"], x["due_local"], x["reason"]) for x in after] == [
        ("reinduction.required", "2026-03-21", "post_procedure")
    ]


def test_procedure_without_analgesia_changes_nothing():
    p = plan(planned_procedures=[{"date": "2026-03-20", "requires_opioid_analgesia": False}])
    assert lines(p, 40) == lines(plan(), 40)


@pytest.mark.parametrize("days_before, held", [(30, True), (31, False), (0, True)])
def test_xr_injection_held_within_30_days_before_procedure(days_before, held):
    surgery = date(2026, 3, 30) + timedelta(days=days_before)  # injection due on 30 March
    state = apply_procedure(
        new_state(plan(formulation="xr")),
        ProcedureScheduled(patient_id="p", date=surgery, requires_opioid_analgesia=True),
        datetime(2026, 3, 10, tzinfo=UTC),
    )
    window = due_items(state, datetime(2026, 3, 29, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    assert [i.type for i in window if "injection" in i.type] == [
        "ntx.injection.held.v1" if held else "ntx.injection.due.v1"
    ]
    assert {i.key for i in window if "injection" in i.key} == {"injection:2026-03-30"}


@pytest.mark.parametrize(
    "given_on, next_due", [("2026-04-02", "2026-04-30"), ("2026-03-27", "2026-04-24")]
)
def test_late_or_early_injection_reanchors_next(given_on, next_due):
    state = new_state(plan(formulation="xr"))
    given = datetime.fromisoformat(given_on + "T12:00:00+01:00")
    state = apply_injection(
        state, InjectionAdministered(patient_id="p", administered_at=given, dose_mg=380)
    )
    window = due_items(state, datetime(2026, 3, 25, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    injections = [
        i.due_local.date().isoformat() for i in window if i.type == "ntx.injection.due.v1"
    ]
    assert injections[0] == next_due


def test_nothing_due_after_stop():
    stop = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    state = apply_stop(
        new_state(plan()), TreatmentStopped(patient_id="p", stopped_at=stop, reason="x")
    )
    items = due_items(state, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert items and max(i.due_utc for i in items) < stop


def test_nothing_before_start_and_keys_are_stable():
    items = due_items(
        new_state(plan()), datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
    )
    assert min(i.due_utc for i in items) >= datetime(2026, 3, 2, tzinfo=UTC)
    again = due_items(
        new_state(plan()), datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
    )
    assert [i.key for i in items] == [i.key for i in again]


def test_event_data_builds_each_event_model():
    p = plan(
        formulation="xr",
        planned_procedures=[{"date": "2026-04-20", "requires_opioid_analgesia": True}],
    )
    items = due_items(
        new_state(p), datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    )
    for item in items:
        data = event_data(item, "p")
        assert data.patient_id == "p"
    assert {i.type for i in items} >= {
        "ntx.injection.held.v1",
        "ntx.reinduction.required.v1",
        "ntx.site_check.due.v1",
    }


@st.composite
def plans(draw) -> TreatmentPlan:
    formulation = draw(st.sampled_from(["oral", "xr"]))
    return plan(
        formulation=formulation,
        oral_regimen=draw(st.sampled_from(["daily", "mwf"])),
        induction_days=draw(st.integers(0, 3)),
        timezone=draw(
            st.sampled_from(
                ["America/New_York", "Europe/London", "Pacific/Auckland", "Asia/Kolkata", "UTC"]
            )
        ),
        start_date=str(date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 365)))),
        dose_time=draw(st.sampled_from(["00:00", "01:30", "02:30", "09:00", "23:59"])),
        lft_interval_months=draw(st.integers(1, 6)),
    )


@settings(max_examples=60, deadline=None)
@given(plans(), st.lists(st.integers(1, 200), min_size=1, max_size=12))
def test_windows_concatenate_without_gaps_or_duplicates(p, cuts_hours):
    state = new_state(p)
    start = local_midnight_utc(p.start_date, p.timezone) - timedelta(hours=30)
    edges = [start]
    for h in cuts_hours:
        edges.append(edges[-1] + timedelta(hours=h))
    pieces = [i for a, b in zip(edges, edges[1:], strict=False) for i in due_items(state, a, b)]
    whole = due_items(state, edges[0], edges[-1])
    assert [i.key + i.type for i in pieces] == [i.key + i.type for i in whole]
    assert len({i.key for i in whole}) == len(whole)
