"""Revision 2 intake rules (DESIGN.md §4.1 r2), both sides of every boundary:
fentanyl, the naloxone challenge, pregnancy and overrides, the procedure chain, the
earliest start date and the advisory polarity."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from services.intake.domain.rules import IntakeInputError, decide, evaluate
from services.intake.domain.settings import RULESET_VERSION
from shared.events import PlannedProcedure
from tests.unit.intake.test_rules import AS_OF, ago, codes, request

FENTANYL_CLEAN = {
    "last_opioid_use": {"date": ago(12), "opioid": "fentanyl"},
    "urine_drug_screen": {"date": ago(1), "opioids_detected": False, "fentanyl_detected": False},
    "naloxone_challenge": {"date": ago(1), "result": "negative"},
}


def fentanyl(**changes):
    return request(**{**FENTANYL_CLEAN, **changes})


def test_a_clean_fentanyl_request_is_accepted():
    assert evaluate(fentanyl(), AS_OF).decision == "accepted"


@pytest.mark.parametrize(
    "screen, missing, positive",
    [
        ({"date": ago(1), "opioids_detected": False}, True, False),
        ({"date": ago(1), "opioids_detected": False, "fentanyl_detected": None}, True, False),
        ({"date": ago(1), "opioids_detected": False, "fentanyl_detected": False}, False, False),
        ({"date": ago(1), "opioids_detected": False, "fentanyl_detected": True}, False, True),
        (None, True, False),
    ],
)
def test_fentanyl_screen_missing_and_positive(screen, missing, positive):
    found = codes(fentanyl(urine_drug_screen=screen))
    assert ("fentanyl_screen_missing" in found) is missing
    assert ("urine_fentanyl_positive" in found) is positive


def test_fentanyl_screen_missing_only_after_fentanyl_and_positive_after_anything():
    untested = {"date": ago(1), "opioids_detected": False}
    assert codes(request(urine_drug_screen=untested)) == []  # heroin: an opiate assay will do
    positive = {"date": ago(1), "opioids_detected": False, "fentanyl_detected": True}
    assert codes(request(urine_drug_screen=positive)) == ["urine_fentanyl_positive"]
    assert evaluate(request(urine_drug_screen=positive), AS_OF).earliest_start_date is None


@pytest.mark.parametrize(
    "challenge, required",
    [
        ({"date": ago(3), "result": "negative"}, False),
        ({"date": ago(4), "result": "negative"}, True),
        ({"date": ago(0), "result": "negative"}, False),
        ({"date": ago(1), "result": "positive"}, True),
        (None, True),
    ],
)
def test_naloxone_challenge_required_after_fentanyl_within_3_days(challenge, required):
    req = fentanyl(naloxone_challenge=challenge)
    assert ("naloxone_challenge_required" in codes(req)) is required
    if required:
        assert evaluate(req, AS_OF).earliest_start_date is None  # needs a new challenge


def test_no_challenge_required_after_other_opioids():
    assert "naloxone_challenge_required" not in codes(request(naloxone_challenge=None))


@pytest.mark.parametrize(
    "days_ago, earliest",
    [(0, AS_OF + timedelta(days=1)), (1, AS_OF), (10, AS_OF)],
)
def test_positive_challenge_earliest_is_the_next_day_but_never_before_as_of(days_ago, earliest):
    req = request(naloxone_challenge={"date": ago(days_ago), "result": "positive"})
    decided = evaluate(req, AS_OF)
    assert codes(req) == ["naloxone_challenge_positive"]
    assert decided.earliest_start_date == earliest


def test_pregnancy_defers_for_a_clinicians_review_without_a_date():
    decided = evaluate(request(conditions=["pregnancy"]), AS_OF)
    assert decided.decision == "deferred" and decided.earliest_start_date is None
    assert [r.code for r in decided.reasons] == ["pregnancy_clinician_review"]
    assert "pregnancy_clinician_review" not in decided.advisories


@pytest.mark.parametrize(
    "changes, code",
    [
        ({"conditions": ["pregnancy"]}, "pregnancy_clinician_review"),
        (
            {"last_opioid_use": {"date": ago(60), "opioid": "buprenorphine_xr"}},
            "depot_buprenorphine_requires_clinician",
        ),
    ],
)
def test_an_override_lifts_its_reason_and_says_so(changes, code):
    override = {"by": "dr-7", "codes": [code]}
    plain = decide(request(**changes), AS_OF)
    assert plain.decided.decision == "deferred" and plain.overridden == []
    lifted = decide(request(**changes, clinician_override=override), AS_OF)
    assert lifted.decided.decision == "accepted"
    assert lifted.decided.reasons == [] and lifted.overridden == [code]
    assert "clinician_override" in lifted.decided.advisories
    assert lifted.decided.plan is not None
    assert "clinician_override" in lifted.decided.plan.advisories


def test_an_override_of_a_reason_that_does_not_apply_changes_nothing():
    override = {"by": "dr-7", "codes": ["pregnancy_clinician_review"]}
    got = decide(request(clinician_override=override), AS_OF)
    assert got.overridden == [] and "clinician_override" not in got.decided.advisories


def test_an_override_leaves_the_other_reasons():
    override = {"by": "dr-7", "codes": ["pregnancy_clinician_review"]}
    req = request(
        conditions=["pregnancy"],
        urine_drug_screen=None,
        clinician_override=override,
    )
    decided = evaluate(req, AS_OF)
    assert [r.code for r in decided.reasons] == ["urine_screen_missing_or_stale"]
    assert decided.decision == "deferred" and "clinician_override" in decided.advisories


def proc(days_ahead: int) -> dict:
    return {"date": str(AS_OF + timedelta(days=days_ahead)), "requires_opioid_analgesia": True}


@pytest.mark.parametrize(
    "formulation, procedures, earliest",
    [
        # oral: +3 defers to +10; +15 is 5 days after that (inside 7): on to +22
        ("oral", [3, 15], 22),
        # +18 is 8 days after +10: outside the 7-day oral window, the start stands
        ("oral", [3, 18], 10),
        # +17 is exactly 7 days after +10: inside, on to +24
        ("oral", [3, 17], 24),
        # a chain of three
        ("oral", [0, 10, 20], 27),
        # xr: +5 defers to +12; +40 is 28 days later (inside 30): on to +47
        ("xr", [5, 40], 47),
        ("xr", [5, 43], 12),
    ],
)
def test_earliest_start_moves_past_every_later_procedure(formulation, procedures, earliest):
    req = request(formulation=formulation, planned_procedures=[proc(d) for d in procedures])
    decided = evaluate(req, AS_OF)
    start = AS_OF + timedelta(days=earliest)
    assert decided.earliest_start_date == start
    again = evaluate(req, start)  # the same request on that date: no procedure deferral
    assert "procedure_within_hold_window" not in [r.code for r in again.reasons]


def test_a_window_date_is_moved_past_a_procedure_too():
    """The opioid window ends on +5, inside the hold window of an operation on +9:
    the date given is one a re-evaluation would accept."""
    req = request(
        formulation="oral",
        last_opioid_use={"date": ago(2), "opioid": "heroin"},
        planned_procedures=[proc(9)],
    )
    decided = evaluate(req, AS_OF)
    assert codes(req) == ["opioid_free_window_not_met"]  # +9 is not within 7 days yet
    assert decided.earliest_start_date == AS_OF + timedelta(days=16)
    again = [r.code for r in evaluate(req, decided.earliest_start_date).reasons]
    assert again == ["urine_screen_missing_or_stale"]  # only a fresh screen is needed then


@pytest.mark.parametrize(
    "flags, risk",
    [
        ({"stable_support": False, "employed": False}, True),
        ({"stable_support": False, "low_craving": False}, True),
        ({"stable_support": False, "failed_agonist_treatment": False}, False),
        ({"employed": False, "failed_agonist_treatment": True}, False),
        ({"stable_support": True, "employed": True, "low_craving": True}, False),
    ],
)
def test_failed_agonist_treatment_is_not_a_discontinuation_risk(flags, risk):
    decided = evaluate(request(psychosocial=flags), AS_OF)
    assert ("high_discontinuation_risk" in decided.advisories) is risk
    assert ("agonist_treatment_failed" in decided.advisories) is (
        flags.get("failed_agonist_treatment") is True
    )


def test_advisories_follow_the_table_order():
    override = {"by": "dr-7", "codes": ["pregnancy_clinician_review"]}
    panel = {"date": ago(1), "alt": 130, "ast": 20, "alt_uln": 40, "ast_uln": 40}
    decided = evaluate(
        request(
            formulation="oral",
            liver_function=panel,
            psychosocial={
                "stable_support": False,
                "employed": False,
                "failed_agonist_treatment": True,
            },
            conditions=["depression", "alcohol_use_disorder", "pregnancy"],
            clinician_override=override,
        ),
        AS_OF,
    )
    assert decided.advisories == [
        "transaminases_over_3x_uln",
        "oral_guideline_caution",
        "high_discontinuation_risk",
        "agonist_treatment_failed",
        "alcohol_use_disorder_benefit",
        "clinician_override",
        "depression_monitoring",
        "naloxone_kit_recommended",
    ]


def test_mwf_plans_carry_the_step_up_days():
    plan = evaluate(request(formulation="oral", oral_regimen="mwf"), AS_OF).plan
    assert plan is not None and plan.mwf_step_days == 7
    daily = evaluate(request(formulation="oral"), AS_OF).plan
    assert daily is not None and daily.mwf_step_days is None


def test_ruleset_version_is_revision_2():
    assert evaluate(request(), AS_OF).ruleset_version == RULESET_VERSION == "intake-2026.11.2"


def test_dates_at_the_end_of_the_calendar_are_input_errors_naming_the_field():
    """The contract refuses such a date by name (plausible window); the rules refuse
    it too (no OverflowError) when handed a request built without validation."""
    end = date(9999, 12, 30)
    procedures = [{"date": str(end), "requires_opioid_analgesia": True}]
    with pytest.raises(ValidationError) as refused:
        request(planned_procedures=procedures)
    assert refused.value.errors()[0]["loc"][:3] == ("planned_procedures", 0, "date")
    valid = request()
    unchecked = valid.model_copy(
        update={
            "planned_procedures": [
                PlannedProcedure.model_construct(**procedures[0] | {"date": end})
            ]
        }
    )
    with pytest.raises(IntakeInputError) as err:
        evaluate(unchecked, end - timedelta(days=1))
    assert err.value.errors[0][0] == "planned_procedures.date"
