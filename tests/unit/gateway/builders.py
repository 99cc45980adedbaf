"""Small FHIR R4 JSON builders for the gateway's unit tests."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from services.gateway.domain.identity import InMemoryPatientIds
from services.gateway.domain.pairing import InMemoryPendingResults
from services.gateway.domain.translate import Repositories, Translation, translate

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
MRN = "https://hospital.example.org/fhir/sid/mrn"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ORAL, XR = "1483744", "637213"


def subject(value: str = "MRN-1") -> dict[str, Any]:
    return {"identifier": {"system": MRN, "value": value}}


def mg(value: Any) -> dict[str, Any]:
    return {"value": value, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}


def ul(value: Any) -> dict[str, Any]:
    return {"value": value, "unit": "U/L", "system": "http://unitsofmeasure.org", "code": "U/L"}


def administration(
    product: str = XR,
    dose: Any = 380,
    route: str | None = "78421000",
    status: str = "completed",
    rid: str = "ma1",
    version: str | None = "1",
    **extra: Any,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": product}]},
        "subject": subject(),
        "effectiveDateTime": "2026-11-20T10:15:00+00:00",
        "dosage": {"dose": mg(dose)},
    }
    if version:
        r["meta"] = {"versionId": version}
    if route:
        r["dosage"]["route"] = {"coding": [{"system": SCT, "code": route}]}
    r.update(extra)
    return r


def observation(
    code: str, rid: str, when: str = "2026-11-18T07:45:00+00:00", who: str = "MRN-1", **value: Any
) -> dict[str, Any]:
    r = {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"versionId": "1"},
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": subject(who),
        "effectiveDateTime": when,
    }
    r.update(value)
    return r


def liver(code: str, rid: str, value: Any, high: Any = 40, **kw: Any) -> dict[str, Any]:
    return observation(
        code, rid, valueQuantity=ul(value), referenceRange=[{"high": ul(high)}], **kw
    )


def screen(code: str, rid: str, result: str = "NEG", **kw: Any) -> dict[str, Any]:
    return observation(
        code, rid, interpretation=[{"coding": [{"system": INTERP, "code": result}]}], **kw
    )


def bundle(*resources: dict[str, Any], kind: str = "batch") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
            for i, r in enumerate(resources)
        ],
    }


def repos() -> Repositories:
    return Repositories(InMemoryPatientIds(), InMemoryPendingResults())


def run(
    doc: dict[str, Any] | str, store: Repositories | None = None, now: datetime = NOW
) -> Translation:
    raw = doc if isinstance(doc, str) else json.dumps(doc)
    return asyncio.run(translate(raw, store or repos(), now))
