"""Hostile input: each gets a clear OperationOutcome (never a crash, never a partial
write in all-or-nothing modes): malformed JSON, the wrong resource type, a huge
Bundle (over ``max_bundle_entries`` = 1,000 entries, or 8 MiB), unknown codes."""

from __future__ import annotations

import json

import pytest

from services.gateway.domain.outcome import Refused, operation_outcome
from services.gateway.domain.settings import DEFAULT_SETTINGS
from tests.unit.gateway.builders import administration, bundle, run, screen


def outcome_of(raw) -> dict:
    with pytest.raises(Refused) as caught:
        run(raw)
    outcome = operation_outcome(caught.value.issues)
    assert outcome["resourceType"] == "OperationOutcome"
    assert all(i["severity"] == "error" and i["expression"] for i in outcome["issue"])
    return outcome["issue"][0]


@pytest.mark.parametrize(
    "raw, expression, words",
    [
        ("{", "$", "not valid JSON"),
        ("", "$", "not valid JSON"),
        ("[1, 2]", "$", "JSON object"),
        ('{"resourceType": 1}', "$", "resourceType"),
        ('{"a": NaN}', "$", "not valid JSON"),
        ("[" * 50_000 + "]" * 50_000, "$", "not valid JSON"),
        (
            json.dumps(
                {
                    "resourceType": "Observation",
                    "x": [
                        [
                            [
                                [
                                    [
                                        [
                                            [
                                                [
                                                    [
                                                        [
                                                            [
                                                                [
                                                                    [
                                                                        [
                                                                            [
                                                                                [
                                                                                    [
                                                                                        [
                                                                                            [
                                                                                                [
                                                                                                    [
                                                                                                        [
                                                                                                            [
                                                                                                                [
                                                                                                                    [
                                                                                                                        [
                                                                                                                            [
                                                                                                                                [
                                                                                                                                    [
                                                                                                                                        [
                                                                                                                                            [
                                                                                                                                                [
                                                                                                                                                    [
                                                                                                                                                        [
                                                                                                                                                            [
                                                                                                                                                                [
                                                                                                                                                                    [
                                                                                                                                                                        [
                                                                                                                                                                            [
                                                                                                                                                                                [
                                                                                                                                                                                    [
                                                                                                                                                                                        [
                                                                                                                                                                                            [
                                                                                                                                                                                                [
                                                                                                                                                                                                    [
                                                                                                                                                                                                        [
                                                                                                                                                                                                            [
                                                                                                                                                                                                                [
                                                                                                                                                                                                                    [
                                                                                                                                                                                                                        [
                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                                                1
                                                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                ]
                                                                                                                                                                                                            ]
                                                                                                                                                                                                        ]
                                                                                                                                                                                                    ]
                                                                                                                                                                                                ]
                                                                                                                                                                                            ]
                                                                                                                                                                                        ]
                                                                                                                                                                                    ]
                                                                                                                                                                                ]
                                                                                                                                                                            ]
                                                                                                                                                                        ]
                                                                                                                                                                    ]
                                                                                                                                                                ]
                                                                                                                                                            ]
                                                                                                                                                        ]
                                                                                                                                                    ]
                                                                                                                                                ]
                                                                                                                                            ]
                                                                                                                                        ]
                                                                                                                                    ]
                                                                                                                                ]
                                                                                                                            ]
                                                                                                                        ]
                                                                                                                    ]
                                                                                                                ]
                                                                                                            ]
                                                                                                        ]
                                                                                                    ]
                                                                                                ]
                                                                                            ]
                                                                                        ]
                                                                                    ]
                                                                                ]
                                                                            ]
                                                                        ]
                                                                    ]
                                                                ]
                                                            ]
                                                        ]
                                                    ]
                                                ]
                                            ]
                                        ]
                                    ]
                                ]
                            ]
                        ]
                    ],
                }
            ),
            "$",
            "nested deeper",
        ),
        ('{"resourceType": "NotAResource"}', "$", "unknown FHIR resource type"),
        ('{"resourceType": "Patient", "foo": 1}', "Patient.foo", "Extra inputs"),
        ('{"resourceType": "Observation", "status": "final"}', "Observation.code", "required"),
    ],
)
def test_malformed_documents(raw, expression, words):
    issue = outcome_of(raw)
    assert issue["expression"] == [expression] and words in issue["diagnostics"]


def test_an_unknown_type_inside_a_bundle_is_named():
    doc = bundle(administration())
    doc["entry"].append({"resource": {"resourceType": "Bogus"}})
    assert outcome_of(json.dumps(doc))["expression"] == ["Bundle.entry[1].resource"]


def test_wrong_resource_type_for_the_meaning():
    wrong = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"text": "x"},
        "patient": {"reference": "Patient/1"},
        "occurrenceDateTime": "2026-11-01",
        "id": "i",
    }
    assert outcome_of(json.dumps(wrong))["code"] == "not-supported"


def test_a_huge_bundle_is_refused_before_it_costs_anything():
    limit = DEFAULT_SETTINGS.max_bundle_entries
    doc = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": {"resourceType": "Basic", "code": {"text": "x"}}}] * (limit + 1),
    }
    issue = outcome_of(json.dumps(doc))
    assert issue["code"] == "too-costly" and str(limit) in issue["diagnostics"]
    nested = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": {"resourceType": "Bundle", "type": "batch", "entry": doc["entry"][:600]}}
        ]
        * 2,
    }
    assert outcome_of(json.dumps(nested))["code"] == "too-costly"


def test_a_body_over_the_size_limit_is_refused_unread():
    raw = '{"resourceType": "Basic", "pad": "' + "x" * DEFAULT_SETTINGS.max_document_bytes + '"}'
    assert outcome_of(raw)["code"] == "too-costly"


@pytest.mark.parametrize(
    "resource, expression",
    [
        (administration(product="999999"), "MedicationAdministration.medicationCodeableConcept"),
        (administration(route="999999"), "MedicationAdministration.dosage.route"),
        (screen("99999-9", "o"), "Observation.code"),
        (screen("19295-5", "o", "WEIRD"), "Observation.interpretation"),
    ],
)
def test_unknown_codes_are_refused_by_path(resource, expression):
    issue = outcome_of(json.dumps(resource))
    assert issue["expression"] == [expression]


def test_a_batch_with_a_bad_entry_still_translates_the_rest():
    t = run(bundle(administration(), administration(product="999999", rid="x")))
    assert len(t.events) == 1 and len(t.refused_entries) == 1
    assert t.outcome()["issue"][0]["expression"] == [
        "Bundle.entry[1].resource.medicationCodeableConcept"
    ]
