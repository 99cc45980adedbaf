"""Intake Bundles to ``intake.requested``, and the CDS Hooks order-sign service running
the intake service's own rules: the three card kinds and what it refuses."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from services.gateway.domain.cds import SERVICE_ID, discovery, order_sign
from services.gateway.domain.outcome import Refused
from tests.unit.gateway import builders
from tests.unit.gateway.builders import NOW, run

EXAMPLES = Path(__file__).parents[3] / "examples" / "fhir"
INTAKE = json.loads((EXAMPLES / "intake_bundle.json").read_text())
CDS = {
    n: json.loads((EXAMPLES / "cds" / f"order_sign_{n}.json").read_text())
    for n in ("accepted", "deferred", "rejected")
}
AS_OF = __import__("datetime").date(2026, 11, 24)


def intake(doc=INTAKE):
    t = run(doc)
    assert [e["type"] for e in t.events] == ["ntx.intake.requested.v1"]
    return t.events[0]["data"], t


def without(doc, kind=None, rid=None):
    doc = copy.deepcopy(doc)
    doc["entry"] = [
        e
        for e in doc["entry"]
        if e["resource"]["resourceType"] != kind and e["resource"].get("id") != rid
    ]
    return doc


def test_intake_bundle_maps_every_fact():
    data, t = intake()
    assert {k: v for k, v in data.items() if k != "patient_id"} == {
        "timezone": "America/New_York",
        "formulation": "xr",
        "dose_time": "10:30",
        "last_opioid_use": {"date": "2026-11-10", "opioid": "heroin"},
        "urine_drug_screen": {
            "date": "2026-11-23",
            "opioids_detected": False,
            "fentanyl_detected": False,
        },
        "naloxone_challenge": {"date": "2026-11-24", "result": "negative"},
        "liver_function": {
            "date": "2026-11-20",
            "alt": 32,
            "ast": 28,
            "alt_uln": 40,
            "ast_uln": 40,
        },
        "conditions": ["alcohol_use_disorder"],
        "planned_procedures": [{"date": "2027-02-03", "requires_opioid_analgesia": False}],
        "consent": {"notify_patient": True, "notify_external": False},
    }
    assert any("not among the conditions" in i.message for i in t.issues)
    assert "MRN-000789" not in json.dumps(t.events)


def test_resending_the_intake_is_the_same_event_and_a_new_screen_a_new_one():
    first = run(INTAKE).events[0]["id"]
    assert run(INTAKE).events[0]["id"] == first
    changed = copy.deepcopy(INTAKE)
    changed["entry"][3]["resource"]["meta"]["versionId"] = "2"
    assert run(changed).events[0]["id"] != first


def test_intake_facts_that_are_missing_are_absent_not_guessed():
    data, _ = intake(without(without(without(INTAKE, "Consent"), rid="obs-nal"), rid="obs-fen"))
    assert "naloxone_challenge" not in data and "consent" not in data
    assert data["urine_drug_screen"]["fentanyl_detected"] is None


@pytest.mark.parametrize(
    "doc, path",
    [
        (without(INTAKE, "MedicationStatement"), "MedicationStatement"),
        (without(INTAKE, "Patient"), "Patient"),
        (without(INTAKE, rid="obs-ast"), "Bundle.entry[6].resource"),
    ],
)
def test_an_intake_missing_what_it_needs_is_refused_whole(doc, path):
    with pytest.raises(Refused) as caught:
        run(doc)
    assert any(i.expression.startswith(path) for i in caught.value.issues), caught.value


def test_oral_intake_reads_regimen_induction_and_dose_time():
    doc = copy.deepcopy(INTAKE)
    order = doc["entry"][1]["resource"]
    order["medicationCodeableConcept"]["coding"][0]["code"] = "1483744"

    def mg(v):
        return {"doseQuantity": builders.mg(v)}

    order["dosageInstruction"] = [
        {
            "sequence": 1,
            "timing": {
                "repeat": {
                    "boundsDuration": {
                        "value": 2,
                        "unit": "d",
                        "system": "http://unitsofmeasure.org",
                        "code": "d",
                    },
                    "frequency": 1,
                    "period": 1,
                    "periodUnit": "d",
                    "timeOfDay": ["08:00:00"],
                }
            },
            "doseAndRate": [mg(25)],
        },
        {
            "sequence": 2,
            "timing": {"repeat": {"dayOfWeek": ["mon", "wed"], "timeOfDay": ["08:00:00"]}},
            "doseAndRate": [mg(100)],
        },
        {
            "sequence": 2,
            "timing": {"repeat": {"dayOfWeek": ["fri"], "timeOfDay": ["08:00:00"]}},
            "doseAndRate": [mg(150)],
        },
    ]
    data, _ = intake(doc)
    assert (
        data["formulation"],
        data["oral_regimen"],
        data["induction_days"],
        data["dose_time"],
    ) == ("oral", "mwf", 2, "08:00")
    order["dosageInstruction"][2]["timing"]["repeat"]["dayOfWeek"] = ["sat"]
    with pytest.raises(Refused, match="Monday"):
        run(doc)


def test_clinician_override_travels_as_given():
    doc = copy.deepcopy(INTAKE)
    doc["entry"][1]["resource"]["extension"] = [
        {
            "url": "https://ntx.example.org/fhir/StructureDefinition/clinician-override",
            "extension": [
                {"url": "by", "valueString": "clin-42"},
                {"url": "code", "valueCode": "pregnancy_clinician_review"},
            ],
        }
    ]
    data, _ = intake(doc)
    assert data["clinician_override"] == {"by": "clin-42", "codes": ["pregnancy_clinician_review"]}


def test_a_fact_about_another_patient_is_refused():
    doc = copy.deepcopy(INTAKE)
    doc["entry"][4]["resource"]["subject"] = {
        "identifier": {"system": "s", "value": "someone-else"}
    }
    with pytest.raises(Refused, match="another patient"):
        run(doc)


# --- CDS Hooks -------------------------------------------------------------------------


def test_discovery_lists_order_sign_with_its_prefetch():
    (service,) = discovery()["services"]
    assert (service["hook"], service["id"]) == ("order-sign", SERVICE_ID)
    assert "http://loinc.org|1742-6" in service["prefetch"]["liverPanel"]
    assert "http://loinc.org|59673-4" in service["prefetch"]["urineScreens"]
    assert all("{{context.patientId}}" in q for q in service["prefetch"].values())


@pytest.mark.parametrize(
    "name, indicator, phrase",
    [
        ("accepted", "info", "may start 2026-11-24"),
        ("deferred", "warning", "until 2026-11-28"),
        ("rejected", "critical", "acute_hepatitis"),
    ],
)
def test_three_decisions_three_card_kinds(name, indicator, phrase):
    (card,) = order_sign(json.dumps(CDS[name]), NOW, AS_OF)["cards"]
    assert card["indicator"] == indicator and phrase in card["summary"]
    assert len(card["summary"]) <= 140 and card["source"]["label"]


def test_the_card_is_the_intake_rules_decision():
    from services.intake.domain.rules import evaluate
    from shared.events import IntakeRequested

    data, _ = intake()
    decided = evaluate(IntakeRequested.model_validate_json(json.dumps(data)), AS_OF)
    assert decided.decision == "accepted"


def test_orders_of_other_drugs_get_no_cards():
    request = copy.deepcopy(CDS["accepted"])
    request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197696"}]
    }
    assert order_sign(json.dumps(request), NOW, AS_OF) == {"cards": []}


def test_facts_missing_give_a_warning_naming_them():
    request = copy.deepcopy(CDS["accepted"])
    request["prefetch"]["opioidUse"] = None
    (card,) = order_sign(json.dumps(request), NOW, AS_OF)["cards"]
    assert card["indicator"] == "warning" and "MedicationStatement" in card["detail"]


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda r: r.update(hook="patient-view"), "hook"),
        (lambda r: r["context"].pop("draftOrders"), "context.draftOrders"),
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r["prefetch"]["patient"].update(resourceType="Nope"), "prefetch.patient"),
    ],
)
def test_malformed_hook_requests_are_refused(change, field):
    request = copy.deepcopy(CDS["accepted"])
    change(request)
    with pytest.raises(Refused) as caught:
        order_sign(json.dumps(request), NOW, AS_OF)
    assert caught.value.issues[0].expression.startswith(field)
