"""Naltrexone administrations and stops (DESIGN.md §8): ``MedicationAdministration``
completed -> ``dose.administered`` / ``injection.administered``; not-done with a
reason -> ``dose.not_given``; ``MedicationStatement`` / ``MedicationRequest`` stopped
-> ``treatment.stopped``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from services.gateway.domain import codes
from services.gateway.domain.facts import Context, Fact, Meaning
from services.gateway.domain.outcome import Issue, refuse
from services.gateway.domain.resources import (
    Item,
    codings,
    instant,
    patient_of,
)
from shared.types import format_utc

MG_UNITS = frozenset({"mg"})
KNOWN_PRODUCTS = "RxNorm 1483744 (50 mg oral tablet) or 637213 (380 mg injection)"


def naltrexone_product(item: Item, ctx: Context, route: str | None = None) -> str:
    """``oral`` or ``xr`` from the medication's RxNorm code (inline, or a Medication
    in the request). An ingredient-only code needs the route to tell which."""
    r = item.resource
    concept, at = r.medicationCodeableConcept, item.at("medicationCodeableConcept")
    if concept is None and r.medicationReference is not None:
        medication = ctx.index.resolve(r.medicationReference.reference, item)
        if medication is None or medication.type != "Medication":
            raise refuse(item.at("medicationReference"), "not a Medication in this request")
        concept, at = medication.resource.code, medication.at("code")
    meaning = codes.naltrexone().meaning_of_any(codings(concept))
    if meaning is None:
        raise refuse(at, f"not a naltrexone product NTX knows ({KNOWN_PRODUCTS})", "code-invalid")
    if meaning == "ingredient":
        if route is None:
            raise refuse(at, "the naltrexone ingredient alone does not tell tablet from injection")
        return "oral" if route == "oral" else "xr"
    return meaning


def administration(item: Item, ctx: Context) -> list[Meaning]:
    r = item.resource
    route = _route(item)
    formulation = naltrexone_product(item, ctx, route)
    if route is not None and route != ("oral" if formulation == "oral" else "intramuscular"):
        raise refuse(item.at("dosage.route"), f"{route} does not fit the {formulation} product")
    patient = patient_of(item, ctx.index)
    if r.status == "completed":
        return [_administered(item, formulation, patient)]
    if r.status == "not-done":
        return _not_given(item, ctx, formulation, patient)
    raise refuse(
        item.at("status"),
        f"{r.status}: only completed and not-done administrations mean something to NTX",
        "not-supported",
    )


def _route(item: Item) -> str | None:
    dosage = item.resource.dosage
    if dosage is None or dosage.route is None:
        return None
    meaning = codes.routes().meaning_of_any(codings(dosage.route))
    if meaning is None:
        raise refuse(item.at("dosage.route"), "not an oral or intramuscular route", "code-invalid")
    return meaning


def _administered(item: Item, formulation: str, patient: Any) -> Fact:
    r = item.resource
    at_time = item.at("effectiveDateTime")
    when = r.effectiveDateTime or (r.effectivePeriod.start if r.effectivePeriod else None)
    kind = "dose" if formulation == "oral" else "injection"
    return Fact(
        f"ntx.{kind}.administered.v1",
        patient,
        {"administered_at": format_utc(instant(when, at_time)), "dose_mg": _dose_mg(item)},
        item.key,
        item.path,
        {"administered_at": at_time, "dose_mg": item.at("dosage.dose.value")},
    )


def _dose_mg(item: Item) -> int:
    dosage = item.resource.dosage
    dose = dosage.dose if dosage is not None else None
    at = item.at("dosage.dose")
    if dose is None or dose.value is None:
        raise refuse(f"{at}.value", "required: the dose given, in mg", "required")
    unit = dose.code or dose.unit
    if unit not in MG_UNITS:
        raise refuse(f"{at}.code", f"unit {unit!r}: NTX takes doses in mg (UCUM 'mg')", "value")
    value = Decimal(dose.value)
    if value != value.to_integral_value():
        raise refuse(f"{at}.value", "a whole number of mg", "value")
    return int(value)


def _not_given(item: Item, ctx: Context, formulation: str, patient: Any) -> list[Meaning]:
    r = item.resource
    if not r.statusReason:
        raise refuse(item.at("statusReason"), "required when status is not-done", "required")
    reason = codes.not_given_reasons().meaning_of_any(
        c for concept in r.statusReason for c in codings(concept)
    )
    notes: list[Meaning] = []
    if reason is None:
        reason = "other"
        notes.append(
            Issue(
                item.at("statusReason"),
                "reason not among NTX's codes: sent as 'other'",
                "code-unknown",
                "warning",
            )
        )
    due = r.effectiveDateTime or (r.effectivePeriod.start if r.effectivePeriod else None)
    due_utc = format_utc(due) if isinstance(due, datetime) and due.tzinfo is not None else None
    recorded = r.meta.lastUpdated if r.meta and r.meta.lastUpdated else ctx.now
    fact = Fact(
        "ntx.dose.not_given.v1",
        patient,
        {
            "due_utc": due_utc,
            "recorded_at": format_utc(recorded),
            "kind": "dose" if formulation == "oral" else "injection",
            "reason": reason,
        },
        item.key,
        item.path,
        {"due_utc": item.at("effectiveDateTime"), "recorded_at": item.at("meta.lastUpdated")},
    )
    return [fact, *notes]


def stopped(item: Item, ctx: Context) -> list[Meaning]:
    """A naltrexone statement or order with status stopped: treatment ended."""
    r = item.resource
    naltrexone_product(item, ctx, route="oral")  # only checks it is naltrexone
    if r.status != "stopped":
        raise refuse(
            item.at("status"),
            f"{r.status}: outside an intake Bundle only a stopped naltrexone "
            f"{item.type} means something to NTX",
            "not-supported",
        )
    at, when = _stop_time(item)
    reasons = r.statusReason if isinstance(r.statusReason, list) else [r.statusReason]
    first = next((c for concept in reasons if concept for c in codings(concept) if c.code), None)
    return [
        Fact(
            "ntx.treatment.stopped.v1",
            patient_of(item, ctx.index),
            {"stopped_at": format_utc(instant(when, at)), "reason": _reason(first)},
            item.key,
            item.path,
            {"stopped_at": at, "reason": item.at("statusReason")},
        )
    ]


def _stop_time(item: Item) -> tuple[str, Any]:
    """When treatment stopped: a statement's effective period end (else the date it
    was asserted, by which it had stopped); an order's last update (R4 orders carry
    no stop time of their own)."""
    r = item.resource
    if item.type == "MedicationStatement":
        if r.effectivePeriod is not None and r.effectivePeriod.end is not None:
            return item.at("effectivePeriod.end"), r.effectivePeriod.end
        return item.at("dateAsserted"), r.dateAsserted
    return item.at("meta.lastUpdated"), r.meta.lastUpdated if r.meta else None


def _reason(coding: Any) -> str:
    """The stop reason as its code (``snomed:...``), never free text, which may name
    people or carry clinical detail that events must not."""
    if coding is None:
        return "unspecified"
    system = (coding.system or "").rstrip("/").rsplit("/", 1)[-1] or "code"
    return f"{system}:{coding.code}"[:200]
