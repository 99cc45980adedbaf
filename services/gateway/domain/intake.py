"""An intake Bundle (DESIGN.md §8) -> the data of ``ntx.intake.requested.v1`` (§3.1).

An intake is recognised by a naltrexone ``MedicationRequest`` that is active or a
draft (an order being placed). Its facts come from the other resources of the same
request: the Patient (time zone), the opioid ``MedicationStatement``s (last use),
the urine screens, the naloxone challenge, the liver panel, ``Condition``s and
``AllergyIntolerance``s, planned procedures and the ``Consent``. The CDS Hooks
order-sign service builds the same request from its prefetch (:mod:`.cds`).
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from services.gateway.domain import codes
from services.gateway.domain.facts import Context, LabPart, ScreenPart
from services.gateway.domain.intake_facts import conditions, consent, procedures
from services.gateway.domain.intake_facts import override as override_of
from services.gateway.domain.observations import challenge, observation, test_of
from services.gateway.domain.outcome import Issue, Refused, refuse
from services.gateway.domain.pairing import json_number
from services.gateway.domain.regimen import regimen
from services.gateway.domain.resources import Item, codings, extension, local_day
from services.gateway.domain.resources import patient_of as patient_ref

ORDERING = frozenset({"active", "draft"})
CONTEXT_ONLY = frozenset(
    {
        "Patient",
        "Medication",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Encounter",
        "Location",
        "Specimen",
        "DiagnosticReport",
        "Provenance",
    }
)


def intake_order(items: list[Item], ctx: Context) -> Item | None:
    """The naltrexone order that makes a request an intake, if there is one."""
    orders = [
        i
        for i in items
        if i.type == "MedicationRequest" and i.resource.status in ORDERING and _naltrexone(i, ctx)
    ]
    if len(orders) > 1:
        raise refuse(orders[1].path, "one naltrexone order per intake request", "business-rule")
    return orders[0] if orders else None


def _naltrexone(item: Item, ctx: Context) -> bool:
    concept = item.resource.medicationCodeableConcept
    if concept is None and item.resource.medicationReference is not None:
        med = ctx.index.resolve(item.resource.medicationReference.reference, item)
        concept = med.resource.code if med is not None else None
    return codes.naltrexone().meaning_of_any(codings(concept)) is not None


def intake_data(order: Item, items: list[Item], ctx: Context) -> tuple[dict[str, Any], list[Issue]]:
    """The §3.1 request (without ``patient_id``) and the notes on what was not used.
    Raises :class:`Refused` with every problem found."""
    notes: list[Issue] = []
    problems: list[Issue] = []
    data: dict[str, Any] = {"timezone": _timezone(order, ctx)}
    data.update(regimen(order, ctx))
    used = {id(order.resource)}
    for name, collect in _PARTS:
        try:
            value = collect(items, ctx, notes, used)
        except Refused as exc:
            problems += exc.issues
            continue
        if value is not None:
            data[name] = value
    override = override_of(order)
    if override is not None:
        data["clinician_override"] = override
    problems += _other_patients(order, items, ctx, used)
    for item in items:
        if id(item.resource) not in used and item.type not in CONTEXT_ONLY:
            problems.append(
                Issue(item.path, f"a {item.type} is not part of an intake request", "not-supported")
            )
    if problems:
        raise Refused(problems)
    return data, notes


def _other_patients(order: Item, items: list[Item], ctx: Context, used: set[int]) -> list[Issue]:
    """Every fact of an intake must be about the ordered patient."""
    patient = patient_ref(order, ctx.index)
    out = []
    for item in items:
        element = "patient" if item.type in ("AllergyIntolerance", "Consent") else "subject"
        if (
            id(item.resource) in used
            and item is not order
            and getattr(item.resource, element, None)
        ):
            try:
                if not patient_ref(item, ctx.index, element) & patient:
                    out.append(
                        Issue(item.at(element), "another patient than the order's", "conflict")
                    )
            except Refused as exc:
                out += exc.issues
    return out


def intake_key(items: list[Item]) -> str:
    """Every resource of the request: the same request sent again is the same event,
    a re-evaluation with a new screen is a new one."""
    keys = "\n".join(sorted(i.key for i in items))
    return "intake:" + hashlib.sha256(keys.encode()).hexdigest()[:32]


def _timezone(order: Item, ctx: Context) -> str:
    patients = list(ctx.index.of_type("Patient"))
    target = (
        ctx.index.resolve(order.resource.subject.reference, order)
        if order.resource.subject
        else None
    )
    patient = (
        target
        if target is not None and target.type == "Patient"
        else (patients[0] if len(patients) == 1 else None)
    )
    at_ext = f"extension('{codes.TIMEZONE_EXTENSIONS[0]}')"
    if patient is None:
        raise refuse(
            f"Patient.{at_ext}", "required: the Patient, with the IANA time zone", "required"
        )
    for url in codes.TIMEZONE_EXTENSIONS:
        ext = extension(patient.resource, url)
        if ext is not None and ext.valueCode:
            return ext.valueCode
    raise refuse(
        patient.at(at_ext), "required: the patient's IANA time zone (valueCode)", "required"
    )


def _last_opioid_use(items, ctx, notes, used) -> dict[str, str]:
    uses: list[tuple[date, str, Item]] = []
    for item in (i for i in items if i.type == "MedicationStatement"):
        opioid = codes.opioids().meaning_of_any(codings(item.resource.medicationCodeableConcept))
        used.add(id(item.resource))
        if opioid is None:
            notes.append(
                Issue(item.path, "not an opioid NTX knows: not used", "code-unknown", "information")
            )
            continue
        r = item.resource
        end = r.effectivePeriod.end if r.effectivePeriod is not None else None
        element = "effectivePeriod.end" if end is not None else "effectiveDateTime"
        uses.append((local_day(end or r.effectiveDateTime, item.at(element)), opioid, item))
    if not uses:
        raise refuse(
            "MedicationStatement",
            "required: the last opioid use (an opioid MedicationStatement with its date)",
            "required",
        )
    last = max(day for day, _, _ in uses)
    on_last = {opioid for day, opioid, _ in uses if day == last}
    if len(on_last) > 1:
        item = next(i for day, _, i in uses if day == last)
        raise refuse(
            item.path, "several opioids last used on the same date: which was last?", "conflict"
        )
    return {"date": last.isoformat(), "opioid": on_last.pop()}


def _observations(items, ctx, used, wanted):
    for item in (i for i in items if i.type == "Observation"):
        if test_of(item) in wanted:
            used.add(id(item.resource))
            yield item


def _urine_screen(items, ctx, notes, used) -> dict[str, Any] | None:
    parts = [
        p
        for item in _observations(items, ctx, used, ("opiates", "fentanyl"))
        for p in observation(item, ctx)
        if isinstance(p, ScreenPart)
    ]
    times = sorted({p.collected_at for p in parts if p.analyte == "opiates"})
    if not times:
        if parts:
            raise refuse(
                parts[0].path, "a fentanyl screen needs the opiate screen of the same specimen"
            )
        return None
    latest = [p for p in parts if p.collected_at == times[-1]]
    opiates = next(p for p in latest if p.analyte == "opiates")
    fentanyl = next((p for p in latest if p.analyte == "fentanyl"), None)
    return {
        "date": opiates.collected_at.date().isoformat(),
        "opioids_detected": opiates.detected,
        "fentanyl_detected": fentanyl.detected if fentanyl else None,
    }


def _naloxone_challenge(items, ctx, notes, used) -> dict[str, str] | None:
    results = [challenge(i) for i in _observations(items, ctx, used, ("naloxone_challenge",))]
    if not results:
        return None
    day, result = max(results)
    return {"date": day.isoformat(), "result": result}


def _liver_function(items, ctx, notes, used) -> dict[str, Any] | None:
    parts = [
        p
        for item in _observations(items, ctx, used, ("alt", "ast"))
        for p in observation(item, ctx)
        if isinstance(p, LabPart)
    ]
    by_time: dict[Any, dict[str, list[LabPart]]] = {}
    for p in parts:
        by_time.setdefault(p.collected_at, {}).setdefault(p.analyte, []).append(p)
    for group in by_time.values():
        for same in group.values():
            if len({(p.value, p.uln) for p in same}) > 1:
                raise refuse(
                    same[1].path, "another result of the same test and time differs", "conflict"
                )
    complete = [t for t, g in by_time.items() if len(g) == 2]
    if not complete:
        if parts:
            raise refuse(parts[0].path, "ALT and AST of the same specimen are both needed")
        return None
    latest = max(complete)
    notes += [
        Issue(p.path, "no partner of the same specimen: not used", "incomplete", "warning")
        for t, g in by_time.items()
        if len(g) == 1
        for same in g.values()
        for p in same
    ]
    alt, ast = by_time[latest]["alt"][0], by_time[latest]["ast"][0]
    return {
        "date": alt.collected_at.date().isoformat(),
        "alt": json_number(alt.value),
        "ast": json_number(ast.value),
        "alt_uln": json_number(alt.uln),
        "ast_uln": json_number(ast.uln),
    }


_PARTS = (
    ("last_opioid_use", _last_opioid_use),
    ("urine_drug_screen", _urine_screen),
    ("naloxone_challenge", _naloxone_challenge),
    ("liver_function", _liver_function),
    ("conditions", conditions),
    ("planned_procedures", procedures),
    ("consent", consent),
)
