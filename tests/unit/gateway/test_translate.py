"""Each row of DESIGN.md §8's table: FHIR R4 in, the NTX event it means out, and
every way a resource's meaning can be undeterminable refused by FHIR path."""

from __future__ import annotations

import json

import pytest

from services.gateway.domain.outcome import Refused
from tests.unit.gateway.builders import (
    NOW,
    ORAL,
    RXNORM,
    SCT,
    XR,
    administration,
    bundle,
    liver,
    repos,
    run,
    screen,
    subject,
)

NTX = "https://ntx.example.org/fhir"


def data(translation, i=0):
    return translation.events[i]["data"]


def refused(doc) -> list[str]:
    with pytest.raises(Refused) as caught:
        run(doc)
    return [i.line() for i in caught.value.issues]


# --- MedicationAdministration -------------------------------------------------------


def test_xr_injection_is_injection_administered():
    t = run(administration())
    assert [e["type"] for e in t.events] == ["ntx.injection.administered.v1"]
    assert data(t) | {"patient_id": "x"} == {
        "patient_id": "x",
        "administered_at": "2026-11-20T10:15:00Z",
        "dose_mg": 380,
    }
    assert (
        t.events[0]["source"] == "ntx/gateway" and t.events[0]["subject"] == data(t)["patient_id"]
    )


@pytest.mark.parametrize("dose", [25, 50, 100, 150])
def test_oral_tablet_is_dose_administered(dose):
    t = run(administration(ORAL, dose, "26643006"))
    assert t.events[0]["type"] == "ntx.dose.administered.v1" and data(t)["dose_mg"] == dose


def test_ingredient_code_with_route_tells_the_formulation():
    t = run(administration("7243", 380, "78421000"))
    assert t.events[0]["type"] == "ntx.injection.administered.v1"
    assert "does not tell tablet from injection" in refused(administration("7243", 50, None))[0]


@pytest.mark.parametrize(
    "resource, path",
    [
        (administration(ORAL, 75, "26643006"), "MedicationAdministration.dosage.dose.value"),
        (administration(XR, 190), "MedicationAdministration.dosage.dose.value"),
        (administration(ORAL, 50.5, "26643006"), "MedicationAdministration.dosage.dose.value"),
        (administration(XR, 380, "26643006"), "MedicationAdministration.dosage.route"),
        (administration(XR, 380, "47625008"), "MedicationAdministration.dosage.route"),
        (administration("197696"), "MedicationAdministration.medicationCodeableConcept"),
        (administration(status="in-progress"), "MedicationAdministration.status"),
        (
            administration(effectiveDateTime="2026-11-20"),
            "MedicationAdministration.effectiveDateTime",
        ),
        (
            administration(effectiveDateTime="2027-11-20T10:00:00Z"),
            "MedicationAdministration.effectiveDateTime",
        ),
        (administration(subject={"reference": "Patient/123"}), "MedicationAdministration.subject"),
        (administration(rid=None, version=None), "MedicationAdministration.id"),
    ],
)
def test_undeterminable_administrations_are_refused_by_path(resource, path):
    if resource.get("id") is None:
        resource.pop("id")
    assert any(line.startswith(path) for line in refused(resource)), refused(resource)


def test_dose_in_grams_is_refused_not_converted():
    r = administration()
    r["dosage"]["dose"] = {
        "value": 0.38,
        "unit": "g",
        "system": "http://unitsofmeasure.org",
        "code": "g",
    }
    assert refused(r)[0].startswith("MedicationAdministration.dosage.dose.code")


def test_not_done_with_reason_is_dose_not_given():
    r = administration(
        ORAL,
        50,
        "26643006",
        status="not-done",
        statusReason=[
            {"coding": [{"system": f"{NTX}/CodeSystem/dose-not-given-reason", "code": "supply"}]}
        ],
        meta={"versionId": "2", "lastUpdated": "2026-11-20T11:00:00+00:00"},
    )
    t = run(r)
    assert t.events[0]["type"] == "ntx.dose.not_given.v1"
    assert data(t) | {"patient_id": "x"} == {
        "patient_id": "x",
        "due_utc": "2026-11-20T10:15:00Z",
        "recorded_at": "2026-11-20T11:00:00Z",
        "kind": "dose",
        "reason": "supply",
    }


def test_not_done_injection_unknown_reason_is_other_with_a_warning_and_no_due_for_a_date():
    r = administration(
        status="not-done",
        effectiveDateTime="2026-11-20",
        statusReason=[{"text": "see notes", "coding": [{"system": SCT, "code": "1234567"}]}],
    )
    t = run(r)
    assert data(t)["kind"] == "injection" and data(t)["reason"] == "other"
    assert data(t)["due_utc"] is None and data(t)["recorded_at"] == "2026-11-25T12:00:00Z"
    assert [i.severity for i in t.issues] == ["warning"]


def test_not_done_without_reason_is_refused():
    assert refused(administration(status="not-done"))[0].startswith(
        "MedicationAdministration.statusReason"
    )


def test_medication_reference_to_a_contained_medication():
    r = administration()
    del r["medicationCodeableConcept"]
    r["contained"] = [
        {
            "resourceType": "Medication",
            "id": "m",
            "code": {"coding": [{"system": RXNORM, "code": XR}]},
        }
    ]
    r["medicationReference"] = {"reference": "#m"}
    assert run(r).events[0]["type"] == "ntx.injection.administered.v1"


# --- identity and idempotency ---------------------------------------------------------


def test_same_resource_again_gives_the_same_event_ids_and_a_new_version_a_new_one():
    store = repos()
    first, again = run(administration(), store), run(administration(), store)
    assert first.events[0]["id"] == again.events[0]["id"]
    assert first.events[0]["subject"] == again.events[0]["subject"]
    assert run(administration(version="2"), store).events[0]["id"] != first.events[0]["id"]


def test_unversioned_resource_is_keyed_by_content():
    store = repos()
    a = run(administration(version=None), store).events[0]["id"]
    assert run(administration(version=None), store).events[0]["id"] == a
    assert (
        run(
            administration(version=None, effectiveDateTime="2026-11-20T10:16:00+00:00"), store
        ).events[0]["id"]
        != a
    )


def test_identifier_never_appears_in_events_and_patients_stay_apart():
    store = repos()
    one = run(administration(), store).events[0]
    other = run(administration(subject=subject("MRN-2")), store).events[0]
    assert one["subject"] != other["subject"]
    assert "MRN-1" not in json.dumps(one) and "hospital.example.org" not in json.dumps(one)


def test_a_patient_in_the_bundle_links_all_its_identifiers():
    store = repos()
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {"system": "https://hospital.example.org/fhir/sid/mrn", "value": "MRN-1"},
            {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "999-00-1234"},
        ],
    }
    ma = administration(subject={"reference": "Patient/p1"})
    first = run(bundle(patient, ma), store).events[0]["subject"]
    later = run(
        administration(
            rid="ma2",
            subject={
                "identifier": {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "999-00-1234"}
            },
        ),
        store,
    )
    assert later.events[0]["subject"] == first
    assert run(administration(rid="ma3"), store).events[0]["subject"] == first


def test_identifiers_of_two_known_patients_are_not_merged():
    store = repos()
    run(administration(), store)
    run(administration(rid="b", subject=subject("MRN-2")), store)
    both = {
        "resourceType": "Patient",
        "id": "p",
        "identifier": [
            {"system": "https://hospital.example.org/fhir/sid/mrn", "value": "MRN-1"},
            {"system": "https://hospital.example.org/fhir/sid/mrn", "value": "MRN-2"},
        ],
    }
    with pytest.raises(Refused, match="different NTX patients"):
        run(
            bundle(
                both,
                administration(rid="c", subject={"reference": "Patient/p"}),
                kind="transaction",
            ),
            store,
        )


# --- urine screens -------------------------------------------------------------------


def test_opiate_screen_alone_has_fentanyl_not_tested():
    t = run(screen("19295-5", "o1", "POS"))
    assert t.events[0]["type"] == "ntx.uds.resulted.v1"
    assert data(t)["opioids_detected"] is True and data(t)["fentanyl_detected"] is None


def test_opiate_and_fentanyl_screens_of_one_specimen_are_one_event():
    t = run(bundle(screen("19295-5", "o1", "NEG"), screen("59673-4", "f1", "POS")))
    assert len(t.events) == 1
    assert (data(t)["opioids_detected"], data(t)["fentanyl_detected"]) == (False, True)


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"valueBoolean": True}, True),
        ({"valueBoolean": False}, False),
        ({"valueCodeableConcept": {"coding": [{"system": SCT, "code": "260373001"}]}}, True),
    ],
)
def test_screen_values_as_boolean_or_code(value, expected):
    from tests.unit.gateway.builders import observation

    assert data(run(observation("3879-4", "o", **value)))["opioids_detected"] is expected


def test_fentanyl_screen_alone_is_refused():
    assert "fentanyl screen alone" in refused(screen("59673-4", "f1", "NEG"))[0]


def test_screen_without_result_or_with_conflicting_ones_is_refused():
    from tests.unit.gateway.builders import observation

    assert refused(observation("19295-5", "o"))[0].startswith("Observation.interpretation")
    conflicting = screen("19295-5", "o", "POS", valueBoolean=False)
    assert "disagrees" in refused(conflicting)[0]


def test_preliminary_result_is_refused():
    r = screen("19295-5", "o")
    r["status"] = "preliminary"
    assert refused(r)[0].startswith("Observation.status")


def test_unknown_test_code_is_refused():
    assert refused(screen("2345-7", "glucose"))[0].startswith("Observation.code")


# --- liver panel ----------------------------------------------------------------------


def test_alt_and_ast_in_one_bundle_are_one_lab_resulted_with_exact_values():
    t = run(bundle(liver("1742-6", "a", 120.3, 40.1), liver("1920-8", "b", 65, 40)))
    assert [e["type"] for e in t.events] == ["ntx.lab.resulted.v1"]
    assert data(t) | {"patient_id": "x"} == {
        "patient_id": "x",
        "collected_at": "2026-11-18T07:45:00Z",
        "alt": 120.3,
        "ast": 65,
        "alt_uln": 40.1,
        "ast_uln": 40,
    }


def test_lone_alt_is_held_then_paired_with_its_ast_whatever_the_order():
    store = repos()
    held = run(liver("1742-6", "a", 50), store)
    assert held.events == [] and [i.severity for i in held.issues] == ["information"]
    assert "held" in held.issues[0].message
    paired = run(liver("1920-8", "b", 30), store)
    assert [e["type"] for e in paired.events] == ["ntx.lab.resulted.v1"]
    assert (data(paired)["alt"], data(paired)["ast"]) == (50, 30)
    together = run(bundle(liver("1742-6", "a", 50), liver("1920-8", "b", 30)))
    assert together.events[0]["id"] == paired.events[0]["id"]


def test_a_half_sent_again_after_its_pair_went_out_is_not_held_again():
    store = repos()
    run(liver("1742-6", "a", 50), store)
    run(liver("1920-8", "b", 30), store)
    again = run(liver("1742-6", "a", 50), store)
    assert again.events == [] and [i.severity for i in again.issues] == ["information"]
    assert "already sent in a lab.resulted" in again.issues[0].message
    assert store.pending_results.held == {}
    run(bundle(liver("1742-6", "c", 50, who="MRN-2"), liver("1920-8", "d", 30, who="MRN-2")), store)
    alone = run(liver("1920-8", "d", 30, who="MRN-2"), store)
    assert alone.events == [] and store.pending_results.held == {}
    newer = liver("1742-6", "a", 51)
    newer["meta"]["versionId"] = "2"
    corrected = run(newer, store)  # a new version is a new fact: held for a partner
    assert "held" in corrected.issues[0].message and len(store.pending_results.held) == 1


def test_lone_results_of_other_times_or_patients_do_not_pair():
    store = repos()
    run(liver("1742-6", "a", 50), store)
    assert run(liver("1920-8", "b", 30, when="2026-11-18T07:46:00+00:00"), store).events == []
    assert run(liver("1920-8", "c", 30, who="MRN-2"), store).events == []


def test_lone_result_expires_into_an_error_naming_it():
    import asyncio
    from datetime import timedelta

    from services.gateway.domain.pairing import expired_results

    store = repos()
    run(liver("1742-6", "a", 50), store)
    wait = timedelta(days=7)
    assert asyncio.run(expired_results(store.pending_results, NOW + timedelta(days=6), wait)) == []
    issues = asyncio.run(expired_results(store.pending_results, NOW + timedelta(days=8), wait))
    assert (
        len(issues) == 1 and issues[0].is_error and "no lab.resulted was sent" in issues[0].message
    )
    assert asyncio.run(expired_results(store.pending_results, NOW + timedelta(days=9), wait)) == []


def test_another_resource_for_a_held_slot_is_a_conflict_but_a_new_version_replaces():
    store = repos()
    run(liver("1742-6", "a", 50), store)
    newer = liver("1742-6", "a", 55)
    newer["meta"]["versionId"] = "2"
    assert run(newer, store).issues[0].severity == "information"
    with pytest.raises(Refused, match="already held"):
        run(liver("1742-6", "other", 60), store)
    assert data(run(liver("1920-8", "b", 30), store))["alt"] == 55


@pytest.mark.parametrize(
    "change, path",
    [
        (lambda r: r.pop("referenceRange"), "Observation.referenceRange.high"),
        (
            lambda r: r["valueQuantity"].update(code="mmol/L", unit="mmol/L"),
            "Observation.valueQuantity.code",
        ),
        (lambda r: r.pop("valueQuantity"), "Observation.valueQuantity.value"),
    ],
)
def test_liver_values_without_uln_or_in_other_units_are_refused(change, path):
    r = liver("1742-6", "a", 50)
    change(r)
    assert refused(r)[0].startswith(path)


def test_diagnostic_report_results_must_be_in_the_request():
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r",
        "status": "final",
        "code": {"text": "LFT"},
        "subject": subject(),
        "result": [{"reference": "Observation/elsewhere"}],
    }
    assert refused(bundle(report, kind="transaction"))[0].startswith(
        "Bundle.entry[0].resource.result[0]"
    )


# --- procedures and stops ---------------------------------------------------------------


def procedure_request(**extra):
    r = {
        "resourceType": "ServiceRequest",
        "id": "s",
        "meta": {"versionId": "1"},
        "extension": [
            {"url": f"{NTX}/StructureDefinition/requires-opioid-analgesia", "valueBoolean": True}
        ],
        "status": "active",
        "intent": "order",
        "code": {"text": "Knee replacement"},
        "subject": subject(),
        "occurrenceDateTime": "2027-01-14T08:00:00-05:00",
    }
    r.update(extra)
    return r


def test_planned_surgery_is_procedure_scheduled_on_its_local_date():
    t = run(procedure_request(occurrenceDateTime="2027-01-14T23:30:00-05:00"))
    assert data(t) | {"patient_id": "x"} == {
        "patient_id": "x",
        "date": "2027-01-14",
        "requires_opioid_analgesia": True,
    }


def test_recorded_emergency_procedure_counts_too():
    r = {
        "resourceType": "Procedure",
        "id": "p",
        "meta": {"versionId": "1"},
        "extension": procedure_request()["extension"],
        "status": "completed",
        "code": {"text": "Appendectomy"},
        "subject": subject(),
        "performedDateTime": "2026-11-24",
    }
    assert data(run(r))["date"] == "2026-11-24"


def test_procedure_without_the_analgesia_flag_or_revoked_is_refused():
    no_flag = procedure_request()
    no_flag.pop("extension")
    assert "requires-opioid-analgesia" in refused(no_flag)[0]
    assert refused(procedure_request(status="revoked"))[0].startswith("ServiceRequest.status")


def stop(**extra):
    r = {
        "resourceType": "MedicationStatement",
        "id": "st",
        "meta": {"versionId": "1"},
        "status": "stopped",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": XR}]},
        "subject": subject(),
        "effectivePeriod": {"end": "2026-11-24T17:00:00-05:00"},
        "statusReason": [
            {"coding": [{"system": SCT, "code": "266710000"}], "text": "patient's words"}
        ],
    }
    r.update(extra)
    return r


def test_stopped_statement_is_treatment_stopped_with_a_coded_reason_never_text():
    t = run(stop())
    assert data(t)["stopped_at"] == "2026-11-24T22:00:00Z" and data(t)["reason"] == "sct:266710000"
    assert "patient's words" not in json.dumps(t.events)


def test_stopped_order_uses_its_last_update():
    r = {
        "resourceType": "MedicationRequest",
        "id": "mr",
        "status": "stopped",
        "intent": "order",
        "meta": {"versionId": "3", "lastUpdated": "2026-11-24T10:00:00+00:00"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": ORAL}]},
        "subject": subject(),
    }
    t = run(r)
    assert data(t)["stopped_at"] == "2026-11-24T10:00:00Z" and data(t)["reason"] == "unspecified"


def test_active_statement_or_another_drug_is_refused():
    assert refused(stop(status="active"))[0].startswith("MedicationStatement.status")
    assert refused(
        stop(medicationCodeableConcept={"coding": [{"system": RXNORM, "code": "6813"}]})
    )[0].startswith("MedicationStatement.medicationCodeableConcept")


# --- bundles and notifications ---------------------------------------------------------


def test_batch_keeps_good_entries_and_reports_bad_ones():
    t = run(bundle(administration(), administration(ORAL, 75, "26643006", rid="bad")))
    assert len(t.events) == 1
    assert [i.expression for i in t.refused_entries] == [
        "Bundle.entry[1].resource.dosage.dose.value"
    ]


def test_transaction_is_all_or_nothing():
    doc = bundle(
        administration(), administration(ORAL, 75, "26643006", rid="bad"), kind="transaction"
    )
    assert refused(doc) == [
        "Bundle.entry[1].resource.dosage.dose.value: dose_mg: "
        + refused(doc)[0].split("dose_mg: ")[1]
    ]


def notification(*resources, kind="event-notification"):
    status = {
        "resourceType": "Parameters",
        "meta": {
            "profile": [
                "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"
            ]
        },
        "parameter": [{"name": "type", "valueCode": kind}],
    }
    doc = bundle(status, *resources, kind="history")
    return doc


def test_notification_carries_the_same_events():
    t = run(notification(administration(), stop()))
    assert [e["type"] for e in t.events] == [
        "ntx.injection.administered.v1",
        "ntx.treatment.stopped.v1",
    ]
    assert t.events[0]["id"] == run(administration()).events[0]["id"]


def test_r4b_subscription_status_notification_and_heartbeat():
    status = {
        "resourceType": "SubscriptionStatus",
        "status": "active",
        "type": "event-notification",
        "topic": "https://ehr.example.org/topic",
        "subscription": {"reference": "Subscription/s"},
    }
    doc = bundle(status, administration(), kind="subscription-notification")
    assert len(run(doc).events) == 1
    beat = run(notification(kind="heartbeat"))
    assert beat.events == [] and "heartbeat" in beat.issues[0].message


def test_id_only_notification_is_refused_since_nothing_is_fetched():
    doc = notification()
    doc["entry"].append({"fullUrl": "https://ehr.example.org/fhir/MedicationAdministration/1"})
    assert refused(doc)[0].startswith("Bundle.entry[1].resource")


def test_delete_and_unsupported_bundle_types_are_refused():
    doc = bundle(administration())
    doc["entry"][0]["request"] = {"method": "DELETE", "url": "MedicationAdministration/ma1"}
    assert "retract" in refused(doc)[0]
    assert refused(bundle(administration(), kind="searchset"))[0].startswith("Bundle.type")


def test_resources_that_mean_nothing_alone_are_refused():
    condition = {
        "resourceType": "Condition",
        "id": "c",
        "subject": subject(),
        "code": {"text": "x"},
    }
    assert "outside an intake" in refused(condition)[0]
    immunization = {
        "resourceType": "Immunization",
        "id": "i",
        "status": "completed",
        "vaccineCode": {"text": "flu"},
        "patient": subject(),
        "occurrenceDateTime": "2026-11-01",
    }
    assert "means nothing to NTX" in refused(immunization)[0]


def test_a_context_resource_alone_is_told_it_means_no_event():
    patient = {"resourceType": "Patient", "id": "p", "identifier": [{"system": "s", "value": "v"}]}
    t = run(patient)
    assert t.events == [] and "no event of its own" in t.issues[0].message
