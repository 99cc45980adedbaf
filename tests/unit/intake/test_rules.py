"""Intake rules (DESIGN.md §4.1): every boundary on both sides, order, precedence."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from services.intake.cli import decision_json
from services.intake.domain.rules import IntakeInputError, evaluate
from shared.events import IntakeRequested

AS_OF = date(2026, 6, 15)


def request(**changes) -> IntakeRequested:
    data = {
        "patient_id": "p-1",
        "timezone": "Europe/London",
        "formulation": "xr",
        "last_opioid_use": {"date": str(AS_OF - timedelta(days=10)), "opioid": "heroin"},
        "urine_drug_screen": {"date": str(AS_OF), "opioids_detected": False},
        "naloxone_challenge": {"date": str(AS_OF), "result": "negative"},
        "liver_function": {"date": str(AS_OF), "alt": 30, "ast": 30, "alt_uln": 40, "ast_uln": 40},
    }
    data.update(changes)
    return IntakeRequested.model_validate_json(json.dumps(data))


def codes(req: IntakeRequested, as_of: date = AS_OF) -> list[str]:
    return [r.code for r in evaluate(req, as_of).reasons]


def ago(days: int) -> str:
    return str(AS_OF - timedelta(days=days))


def test_clean_request_is_accepted_with_plan():
    decided = evaluate(request(), AS_OF)
    assert decided.decision == "accepted" and decided.reasons == []
    assert decided.plan is not None and decided.plan.start_date == AS_OF
    assert decided.earliest_start_date is None
    assert decided.ruleset_version


@pytest.mark.parametrize(
    "opioid, days, deferred",
    [
        ("heroin", 6, True),
        ("heroin", 7, False),
        ("fentanyl", 9, True),
        ("fentanyl", 10, False),
        ("oxycodone", 7, False),
        ("other_short_acting", 6, True),
        ("methadone", 13, True),
        ("methadone", 14, False),
        ("buprenorphine", 13, True),
        ("buprenorphine", 14, False),
    ],
)
def test_opioid_free_window(opioid, days, deferred):
    req = request(
        last_opioid_use={"date": ago(days), "opioid": opioid},
        urine_drug_screen={
            "date": str(AS_OF),
            "opioids_detected": False,
            "fentanyl_detected": False,
        },
    )
    decided = evaluate(req, AS_OF)
    assert ("opioid_free_window_not_met" in codes(req)) is deferred
    assert decided.decision == ("deferred" if deferred else "accepted")
    if deferred:
        window = {"methadone": 14, "buprenorphine": 14, "fentanyl": 10}.get(opioid, 7)
        assert decided.earliest_start_date == AS_OF - timedelta(days=days) + timedelta(days=window)


def test_depot_buprenorphine_defers_without_a_date():
    req = request(last_opioid_use={"date": ago(60), "opioid": "buprenorphine_xr"})
    decided = evaluate(req, AS_OF)
    assert codes(req) == ["depot_buprenorphine_requires_clinician"]
    assert decided.decision == "deferred" and decided.earliest_start_date is None


@pytest.mark.parametrize("days, stale", [(3, False), (4, True), (0, False)])
def test_urine_screen_age(days, stale):
    req = request(urine_drug_screen={"date": ago(days), "opioids_detected": False})
    assert ("urine_screen_missing_or_stale" in codes(req)) is stale


def test_missing_screen_and_positive_screen():
    assert codes(request(urine_drug_screen=None)) == ["urine_screen_missing_or_stale"]
    positive = request(urine_drug_screen={"date": ago(1), "opioids_detected": True})
    assert codes(positive) == ["urine_opioid_positive"]
    assert evaluate(positive, AS_OF).earliest_start_date is None


def test_positive_naloxone_challenge_earliest_next_day():
    req = request(naloxone_challenge={"date": ago(0), "result": "positive"})
    decided = evaluate(req, AS_OF)
    assert codes(req) == ["naloxone_challenge_positive"]
    assert decided.earliest_start_date == AS_OF + timedelta(days=1)


@pytest.mark.parametrize("days, stale", [(30, False), (31, True)])
def test_liver_panel_age(days, stale):
    panel = {"date": ago(days), "alt": 30, "ast": 30, "alt_uln": 40, "ast_uln": 40}
    assert ("baseline_lft_missing_or_stale" in codes(request(liver_function=panel))) is stale


def test_missing_liver_panel_defers():
    assert codes(request(liver_function=None)) == ["baseline_lft_missing_or_stale"]


@pytest.mark.parametrize(
    "alt, uln, ast, rejected, advisory",
    [
        (120.3, 40.1, 10, False, True),  # exactly 3x, exact decimal
        (120.2, 40.1, 10, False, False),  # just below 3x
        (200.5, 40.1, 10, True, True),  # exactly 5x
        (200.4, 40.1, 10, False, True),  # just below 5x
        (10, 40, 200, True, True),  # AST at 5x
        (10, 40, 119.9, False, False),  # AST just below 3x of 40
    ],
)
def test_transaminase_thresholds(alt, uln, ast, rejected, advisory):
    panel = {"date": ago(1), "alt": alt, "ast": ast, "alt_uln": uln, "ast_uln": 40}
    decided = evaluate(request(liver_function=panel), AS_OF)
    assert (decided.decision == "rejected") is rejected
    assert ("transaminases_over_3x_uln" in decided.advisories) is advisory


def test_over_3x_uln_means_monthly_liver_tests():
    panel = {"date": ago(1), "alt": 130, "ast": 20, "alt_uln": 40, "ast_uln": 40}
    plan = evaluate(request(liver_function=panel), AS_OF).plan
    assert plan is not None and plan.lft_interval_months == 1
    assert evaluate(request(), AS_OF).plan.lft_interval_months == 3


@pytest.mark.parametrize(
    "formulation, days_ahead, deferred",
    [
        ("oral", 7, True),
        ("oral", 8, False),
        ("oral", 0, True),
        ("xr", 30, True),
        ("xr", 31, False),
        ("xr", -1, False),
    ],
)
def test_procedure_hold_window(formulation, days_ahead, deferred):
    proc = [{"date": str(AS_OF + timedelta(days=days_ahead)), "requires_opioid_analgesia": True}]
    req = request(formulation=formulation, planned_procedures=proc)
    decided = evaluate(req, AS_OF)
    assert ("procedure_within_hold_window" in codes(req)) is deferred
    if deferred:  # post-operative analgesia needs its own 7 opioid-free days
        assert decided.earliest_start_date == AS_OF + timedelta(days=days_ahead + 7)


def test_procedure_without_opioid_analgesia_does_not_defer():
    proc = [{"date": str(AS_OF + timedelta(days=2)), "requires_opioid_analgesia": False}]
    assert codes(request(planned_procedures=proc)) == []


def test_latest_procedure_sets_earliest_start():
    procs = [
        {"date": str(AS_OF + timedelta(days=5)), "requires_opioid_analgesia": True},
        {"date": str(AS_OF + timedelta(days=20)), "requires_opioid_analgesia": True},
    ]
    assert evaluate(
        request(planned_procedures=procs), AS_OF
    ).earliest_start_date == AS_OF + timedelta(days=27)


@pytest.mark.parametrize(
    "condition",
    [
        "acute_hepatitis",
        "liver_failure",
        "opioid_analgesic_required",
        "naltrexone_hypersensitivity",
    ],
)
def test_rejecting_conditions(condition):
    decided = evaluate(request(conditions=[condition]), AS_OF)
    assert decided.decision == "rejected" and codes(request(conditions=[condition])) == [condition]
    assert decided.plan is None and decided.earliest_start_date is None


def test_all_reasons_listed_in_table_order_and_rejection_wins():
    req = request(
        conditions=["naltrexone_hypersensitivity", "acute_hepatitis"],
        last_opioid_use={"date": ago(2), "opioid": "heroin"},
        urine_drug_screen={"date": ago(9), "opioids_detected": True},
        naloxone_challenge={"date": ago(0), "result": "positive"},
        liver_function={"date": ago(40), "alt": 400, "ast": 30, "alt_uln": 40, "ast_uln": 40},
        planned_procedures=[
            {"date": str(AS_OF + timedelta(days=10)), "requires_opioid_analgesia": True}
        ],
    )
    assert codes(req) == [
        "acute_hepatitis",
        "naltrexone_hypersensitivity",
        "transaminases_over_5x_uln",
        "opioid_free_window_not_met",
        "urine_screen_missing_or_stale",
        "urine_opioid_positive",
        "naloxone_challenge_positive",
        "baseline_lft_missing_or_stale",
        "procedure_within_hold_window",
    ]
    assert evaluate(req, AS_OF).decision == "rejected"
    r2 = request(
        conditions=["pregnancy"],
        last_opioid_use={"date": ago(2), "opioid": "fentanyl"},
        urine_drug_screen={"date": ago(9), "opioids_detected": True, "fentanyl_detected": True},
        naloxone_challenge={"date": ago(0), "result": "positive"},
        planned_procedures=[
            {"date": str(AS_OF + timedelta(days=10)), "requires_opioid_analgesia": True}
        ],
    )
    assert codes(r2) == [
        "pregnancy_clinician_review",
        "opioid_free_window_not_met",
        "urine_screen_missing_or_stale",
        "urine_opioid_positive",
        "urine_fentanyl_positive",
        "naloxone_challenge_positive",
        "naloxone_challenge_required",
        "procedure_within_hold_window",
    ]


def test_earliest_start_is_latest_dated_or_null_if_any_undated():
    dated = request(
        last_opioid_use={"date": ago(2), "opioid": "heroin"},
        naloxone_challenge={"date": ago(0), "result": "positive"},
    )
    assert evaluate(dated, AS_OF).earliest_start_date == AS_OF + timedelta(days=5)
    undated = request(last_opioid_use={"date": ago(2), "opioid": "heroin"}, urine_drug_screen=None)
    assert evaluate(undated, AS_OF).earliest_start_date is None


@pytest.mark.parametrize(
    "changes, advisory, present",
    [
        ({"formulation": "oral"}, "oral_guideline_caution", True),
        ({}, "oral_guideline_caution", False),
        (
            {"psychosocial": {"stable_support": False, "employed": False}},
            "high_discontinuation_risk",
            True,
        ),
        (
            {"psychosocial": {"stable_support": False, "employed": True}},
            "high_discontinuation_risk",
            False,
        ),
        ({"conditions": ["alcohol_use_disorder"]}, "alcohol_use_disorder_benefit", True),
        ({"psychosocial": {"failed_agonist_treatment": True}}, "agonist_treatment_failed", True),
        (
            {"psychosocial": {"failed_agonist_treatment": False}},
            "agonist_treatment_failed",
            False,
        ),
        ({"conditions": ["depression"]}, "depression_monitoring", True),
        ({}, "naloxone_kit_recommended", True),
    ],
)
def test_advisories(changes, advisory, present):
    decided = evaluate(request(**changes), AS_OF)
    assert (advisory in decided.advisories) is present
    assert decided.decision == "accepted"  # advisories never change the outcome
    assert decided.advisories[-1] == "naloxone_kit_recommended"


def test_plan_defaults_oral_and_xr():
    oral = evaluate(request(formulation="oral"), AS_OF).plan
    assert (
        oral.oral_regimen,
        oral.induction_days,
        oral.uds_interval_days,
        oral.review_after_months,
    ) == ("daily", 1, 7, 6)
    xr = evaluate(request(consent={"notify_patient": True}), AS_OF).plan
    assert xr.oral_regimen is None and xr.induction_days is None and xr.consent.notify_patient


@pytest.mark.parametrize(
    "field, changes",
    [
        ("last_opioid_use.date", {"last_opioid_use": {"date": "2026-06-16", "opioid": "heroin"}}),
        (
            "urine_drug_screen.date",
            {"urine_drug_screen": {"date": "2026-06-16", "opioids_detected": False}},
        ),
        (
            "naloxone_challenge.date",
            {"naloxone_challenge": {"date": "2026-07-01", "result": "negative"}},
        ),
        (
            "liver_function.date",
            {
                "liver_function": {
                    "date": "2026-06-16",
                    "alt": 1,
                    "ast": 1,
                    "alt_uln": 40,
                    "ast_uln": 40,
                }
            },
        ),
    ],
)
def test_future_dates_are_input_errors_naming_the_field(field, changes):
    with pytest.raises(IntakeInputError) as err:
        evaluate(request(**changes), AS_OF)
    assert err.value.errors[0][0] == field


def test_decision_json_has_the_cli_shape():
    out = decision_json(evaluate(request(), AS_OF))
    assert list(out) == ["decision", "reasons", "earliest_start_date", "advisories", "plan"]
    assert out["plan"]["start_date"] == "2026-06-15"
