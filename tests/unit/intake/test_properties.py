"""Property tests: any valid request gets a decision that obeys the precedence rule;
any mutated invalid one is refused with the field named."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import get_args

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.domain.rules import evaluate
from shared.events import Condition, IntakeRequested, Opioid

AS_OF = date(2026, 6, 15)
REJECTING = {
    "acute_hepatitis",
    "liver_failure",
    "opioid_analgesic_required",
    "naltrexone_hypersensitivity",
    "transaminases_over_5x_uln",
}
OPIOIDS = list(get_args(Opioid))
CONDITIONS = list(get_args(Condition))

past = st.integers(min_value=0, max_value=60).map(lambda d: str(AS_OF - timedelta(days=d)))
number = st.decimals(min_value=0, max_value=1000, places=1).map(float)
uln = st.decimals(min_value=1, max_value=100, places=1).map(float)


@st.composite
def requests(draw) -> dict:
    formulation = draw(st.sampled_from(["oral", "xr"]))
    req = {
        "patient_id": draw(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)),
        "timezone": draw(
            st.sampled_from(
                ["Europe/London", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]
            )
        ),
        "formulation": formulation,
        "last_opioid_use": {"date": draw(past), "opioid": draw(st.sampled_from(OPIOIDS))},
        "urine_drug_screen": draw(
            st.none() | st.fixed_dictionaries({"date": past, "opioids_detected": st.booleans()})
        ),
        "naloxone_challenge": draw(
            st.none()
            | st.fixed_dictionaries(
                {"date": past, "result": st.sampled_from(["negative", "positive"])}
            )
        ),
        "liver_function": draw(
            st.none()
            | st.fixed_dictionaries(
                {"date": past, "alt": number, "ast": number, "alt_uln": uln, "ast_uln": uln}
            )
        ),
        "conditions": draw(st.lists(st.sampled_from(CONDITIONS), unique=True, max_size=3)),
        "planned_procedures": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "date": st.integers(-5, 40).map(lambda d: str(AS_OF + timedelta(days=d))),
                        "requires_opioid_analgesia": st.booleans(),
                    }
                ),
                max_size=2,
            )
        ),
    }
    if formulation == "oral":
        req["oral_regimen"] = draw(st.sampled_from(["daily", "mwf"]))
        req["induction_days"] = draw(st.integers(0, 3))
    return req


@settings(max_examples=300, deadline=None)
@given(requests())
def test_decision_obeys_precedence(raw):
    decided = evaluate(IntakeRequested.model_validate_json(json.dumps(raw)), AS_OF)
    found = {r.code for r in decided.reasons}
    if found & REJECTING:
        assert decided.decision == "rejected"
    elif found:
        assert decided.decision == "deferred"
    else:
        assert decided.decision == "accepted"
    assert (decided.plan is not None) == (decided.decision == "accepted")
    if decided.earliest_start_date is not None:
        assert decided.decision == "deferred" and decided.earliest_start_date > AS_OF - timedelta(
            days=61
        )
    assert decided.advisories[-1] == "naloxone_kit_recommended"


MUTATIONS = [
    (lambda r: r.update(unexpected=1), "unexpected"),
    (lambda r: r.update(timezone="Mars/Olympus_Mons"), "timezone"),
    (lambda r: r["last_opioid_use"].update(date="2026-02-30"), "last_opioid_use.date"),
    (lambda r: r["last_opioid_use"].update(opioid="kratom"), "last_opioid_use.opioid"),
    (lambda r: r.update(formulation=1), "formulation"),
    (lambda r: r.update(conditions=["flu"]), "conditions.0"),
    (lambda r: r.update(patient_id="has space"), "patient_id"),
    (lambda r: r.update(dose_time="25:00"), "dose_time"),
    (lambda r: r.pop("last_opioid_use"), "last_opioid_use"),
]


@settings(max_examples=200, deadline=None)
@given(requests(), st.sampled_from(MUTATIONS))
def test_mutated_request_is_refused_naming_the_field(raw, mutation):
    mutate, field = mutation
    mutate(raw)
    try:
        IntakeRequested.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        named = {".".join(str(p) for p in e["loc"]) for e in exc.errors()}
        assert field in named
    else:
        raise AssertionError(f"mutation of {field} was accepted")
