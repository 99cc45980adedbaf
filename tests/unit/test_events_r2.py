"""Revision 2 contract checks (DESIGN.md §3.1, §3.3, §4.2): implausible values are
input errors naming the field, on both sides of each boundary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.envelope import InvalidEvent, parse, parse_data
from shared.recorded import FUTURE_SKEW, check_recorded_data
from shared.topics import event_type
from tests.unit.event_examples import EXAMPLES

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def data_of(type_: str, **changes):
    return parse_data(event_type(type_), {**EXAMPLES[type_], **changes})


def refused_field(type_: str, **changes) -> str:
    with pytest.raises(InvalidEvent) as err:
        data_of(type_, **changes)
    return err.value.field


@pytest.mark.parametrize("mg", [25, 50, 100, 150])
def test_oral_doses_of_the_regimens_are_accepted(mg):
    assert data_of("ntx.dose.administered.v1", dose_mg=mg).dose_mg == mg
    assert data_of("ntx.dose.due.v1", dose_mg=mg).dose_mg == mg


@pytest.mark.parametrize("mg", [0, 24, 26, 75, 200, 380, 400])
def test_any_other_oral_dose_is_refused_by_name(mg):
    assert refused_field("ntx.dose.administered.v1", dose_mg=mg) == "data.dose_mg"
    assert refused_field("ntx.dose.held.v1", dose_mg=mg) == "data.dose_mg"


@pytest.mark.parametrize("mg, ok", [(380, True), (379, False), (381, False), (50, False)])
def test_an_injection_is_380_mg_and_nothing_else(mg, ok):
    if ok:
        assert data_of("ntx.injection.administered.v1", dose_mg=mg).dose_mg == 380
    else:
        assert refused_field("ntx.injection.administered.v1", dose_mg=mg) == "data.dose_mg"
        assert refused_field("ntx.injection.due.v1", dose_mg=mg) == "data.dose_mg"


@pytest.mark.parametrize(
    "type_, field",
    [
        ("ntx.dose.administered.v1", "administered_at"),
        ("ntx.injection.administered.v1", "administered_at"),
        ("ntx.uds.resulted.v1", "collected_at"),
        ("ntx.lab.resulted.v1", "collected_at"),
        ("ntx.treatment.stopped.v1", "stopped_at"),
        ("ntx.dose.not_given.v1", "recorded_at"),
    ],
)
@pytest.mark.parametrize(
    "ahead, refused",
    [(FUTURE_SKEW, False), (FUTURE_SKEW + timedelta(microseconds=1), True), (-FUTURE_SKEW, False)],
)
def test_recorded_times_more_than_5_minutes_ahead_are_refused(type_, field, ahead, refused):
    assert timedelta(minutes=5) == FUTURE_SKEW
    data = data_of(type_, **{field: (NOW + ahead).isoformat()})
    if refused:
        with pytest.raises(InvalidEvent) as err:
            check_recorded_data(data, NOW)
        assert err.value.field == f"data.{field}"
    else:
        check_recorded_data(data, NOW)


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory"])
def test_zones_that_are_not_a_patients_are_refused(zone):
    assert refused_field("ntx.intake.requested.v1", timezone=zone) == "data.timezone"
    assert refused_field("ntx.plan.created.v1", timezone=zone) == "data.timezone"


def test_a_real_zone_is_accepted():
    assert data_of("ntx.plan.created.v1", timezone="Europe/London").timezone == "Europe/London"


@pytest.mark.parametrize(
    "codes, field",
    [
        (["depot_buprenorphine_requires_clinician"], None),
        (["pregnancy_clinician_review", "depot_buprenorphine_requires_clinician"], None),
        (["urine_opioid_positive"], "data.clinician_override.codes.0"),
        (["pregnancy_clinician_review", "acute_hepatitis"], "data.clinician_override.codes.1"),
        ([], "data.clinician_override.codes"),
    ],
)
def test_only_the_two_overridable_codes_may_be_overridden(codes, field):
    override = {"by": "dr-7", "codes": codes}
    if field is None:
        got = data_of("ntx.intake.requested.v1", clinician_override=override)
        assert got.clinician_override.codes == codes
    else:
        assert refused_field("ntx.intake.requested.v1", clinician_override=override) == field


def test_fentanyl_detected_absent_means_not_tested():
    screen = {"date": "2026-03-01", "opioids_detected": False}
    request = data_of("ntx.intake.requested.v1", urine_drug_screen=screen)
    assert request.urine_drug_screen.fentanyl_detected is None
    result = dict(EXAMPLES["ntx.uds.resulted.v1"])
    del result["fentanyl_detected"]
    assert parse_data(event_type("ntx.uds.resulted.v1"), result).fentanyl_detected is None


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"kind": "pill"}, "data.kind"),
        ({"reason": "forgot"}, "data.reason"),
        ({"due_utc": "2026-03-04T13:30:00"}, "data.due_utc"),
    ],
)
def test_not_given_fields_are_checked(changes, field):
    assert refused_field("ntx.dose.not_given.v1", **changes) == field
    assert data_of("ntx.dose.not_given.v1", due_utc=None).due_utc is None


@pytest.mark.parametrize(
    "regimen, given, expected",
    [("mwf", None, 7), ("mwf", 0, 0), ("mwf", 14, 14), ("daily", None, None)],
)
def test_mwf_step_days_defaults_to_7_for_mwf_plans(regimen, given, expected):
    plan = {**EXAMPLES["ntx.plan.created.v1"], "oral_regimen": regimen}
    plan.pop("mwf_step_days")
    if given is not None:
        plan["mwf_step_days"] = given
    parsed = parse_data(event_type("ntx.plan.created.v1"), plan)
    assert parsed.mwf_step_days == expected


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"mwf_step_days": 15}, "data.mwf_step_days"),
        ({"mwf_step_days": -1}, "data.mwf_step_days"),
        ({"oral_regimen": "daily", "mwf_step_days": 7}, "data.mwf_step_days"),
        (
            {"formulation": "xr", "oral_regimen": None, "induction_days": None},
            "data.mwf_step_days",
        ),
    ],
)
def test_mwf_step_days_bounds_and_formulation(changes, field):
    assert refused_field("ntx.plan.created.v1", **changes) == field


def test_acknowledgement_may_name_its_alert():
    ack = dict(EXAMPLES["ntx.alert.acknowledged.v1"])
    assert data_of("ntx.alert.acknowledged.v1").alert_id == "a-1"
    ack.pop("alert_id")
    assert parse_data(event_type("ntx.alert.acknowledged.v1"), ack).alert_id is None


def test_not_given_travels_on_the_clinical_topic():
    assert event_type("ntx.dose.not_given.v1").topic.name == "ntx.clinical.events.v1"
    body = {
        "specversion": "1.0",
        "id": "x-1",
        "source": "hs/test",
        "type": "ntx.dose.not_given.v1",
        "time": "2026-03-04T13:45:00Z",
        "subject": "pt-0042",
        "data": EXAMPLES["ntx.dose.not_given.v1"],
    }
    assert parse(json.dumps(body).encode()).data.kind == "dose"
