"""Plausibility bounds (issue 18): dates outside the window, times that overflow when
moved to UTC and absurd numbers are input errors naming the field, never an
OverflowError and never a plan that starts in 1500."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.envelope import InvalidEvent, parse_data
from shared.topics import event_type
from shared.types import MAX_DOSE_MG, PLAUSIBLE_EARLIEST, plausible_until
from tests.unit.event_examples import EXAMPLES, PLAN


def refused(type_: str, data: dict) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as err:
        parse_data(event_type(type_), {**EXAMPLES[type_], **data})
    return err.value


def accepted(type_: str, data: dict) -> None:
    parse_data(event_type(type_), {**EXAMPLES[type_], **data})


@pytest.mark.parametrize(
    "moment",
    ["0001-01-01T00:30:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"],
)
def test_times_that_overflow_in_utc_name_their_field(moment):
    err = refused("ntx.dose.administered.v1", {"administered_at": moment})
    assert err.field == "data.administered_at"


@pytest.mark.parametrize("year", [1, 1500, 1999, 9999])
def test_plan_start_outside_the_window_is_refused_by_name(year):
    plan = {**PLAN, "start_date": f"{year:04d}-03-02"}
    err = refused("ntx.intake.accepted.v1", {"plan": plan})
    assert err.field == "data.plan.start_date" and "implausible" in err.message


def test_window_edges():
    first, last = PLAUSIBLE_EARLIEST, plausible_until()
    for day in (first, last):
        accepted("ntx.lab.due.v1", {"due_local": day.isoformat()})
    for day in (first - timedelta(days=1), last + timedelta(days=1)):
        assert refused("ntx.lab.due.v1", {"due_local": day.isoformat()}).field == "data.due_local"


@pytest.mark.parametrize(
    ("type_", "field", "value"),
    [
        ("ntx.dose.due.v1", "due_utc", "9999-12-31T23:59:00Z"),
        ("ntx.dose.due.v1", "due_local", "0001-01-01T09:00"),
        ("ntx.procedure.scheduled.v1", "date", "9999-12-31"),
        ("ntx.uds.resulted.v1", "collected_at", "1970-01-01T00:00:00Z"),
        ("ntx.treatment.stopped.v1", "stopped_at", "0001-01-01T00:00:00Z"),
    ],
)
def test_dates_and_times_outside_the_window(type_, field, value):
    assert refused(type_, {field: value}).field == f"data.{field}"


def test_history_may_predate_ntx_but_not_a_living_patient():
    request = EXAMPLES["ntx.intake.requested.v1"]
    old_use = {**request["last_opioid_use"], "date": "1995-06-01"}
    accepted("ntx.intake.requested.v1", {"last_opioid_use": old_use})
    ancient = {**request["last_opioid_use"], "date": "0001-01-01"}
    err = refused("ntx.intake.requested.v1", {"last_opioid_use": ancient})
    assert err.field == "data.last_opioid_use.date"


@pytest.mark.parametrize(
    "type_", ["ntx.dose.due.v1", "ntx.dose.administered.v1", "ntx.injection.due.v1"]
)
@pytest.mark.parametrize("dose", [10**400, MAX_DOSE_MG + 1, 0])
def test_doses_are_bounded(type_, dose):
    assert refused(type_, {"dose_mg": dose}).field == "data.dose_mg"


def test_exact_numbers_are_bounded():
    assert refused("ntx.lab.resulted.v1", {"alt": 10**400}).field == "data.alt"


def test_codes_and_lists_are_bounded():
    err = refused("ntx.alert.raised.v1", {"reason": "x" * 65})
    assert err.field == "data.reason"
    many = ["naloxone_kit_recommended"] * 33
    assert refused("ntx.intake.accepted.v1", {"advisories": many}).field == "data.advisories"


def test_the_window_follows_the_wall_clock():
    assert plausible_until(date(2026, 1, 1)) == date(2036, 1, 1)
