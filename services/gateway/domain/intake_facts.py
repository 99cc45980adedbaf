"""The context facts of an intake request (DESIGN.md §3.1): conditions and a
naltrexone allergy, planned procedures, the notification consents, and a documented
clinician override. Facts NTX's rules do not weigh are noted, not used."""

from __future__ import annotations

from typing import Any

from services.gateway.domain import codes
from services.gateway.domain.outcome import Issue
from services.gateway.domain.procedures import planned
from services.gateway.domain.resources import Item, codings, extension

CONDITION_LIVE = frozenset({"active", "recurrence", "relapse"})
NOT_TRUE = frozenset({"refuted", "entered-in-error"})


def conditions(items, ctx, notes, used) -> list[str]:
    found: list[str] = []
    for item in (i for i in items if i.type in ("Condition", "AllergyIntolerance")):
        used.add(id(item.resource))
        meaning = _condition(item, notes)
        if meaning is not None and meaning not in found:
            found.append(meaning)
    return found


def _condition(item: Item, notes: list[Issue]) -> str | None:
    r = item.resource
    status = {c.code for c in codings(r.clinicalStatus)}
    verification = {c.code for c in codings(r.verificationStatus)}
    if (status and not status & CONDITION_LIVE) or verification & NOT_TRUE:
        notes.append(Issue(item.path, "not current: not used", "informational", "information"))
        return None
    if item.type == "AllergyIntolerance":
        if codes.naltrexone().meaning_of_any(codings(r.code)) is not None:
            return "naltrexone_hypersensitivity"
        meaning = None
    else:
        meaning = codes.conditions().meaning_of_any(codings(r.code))
    if meaning is None:
        notes.append(
            Issue(
                item.at("code"),
                "not among the conditions NTX's rules weigh: not used",
                "code-unknown",
                "information",
            )
        )
    return meaning


def procedures(items, ctx, notes, used) -> list[dict[str, Any]]:
    out = []
    for item in (i for i in items if i.type in ("Procedure", "ServiceRequest")):
        used.add(id(item.resource))
        day, needs = planned(item)
        out.append({"date": day.isoformat(), "requires_opioid_analgesia": needs})
    return out


def consent(items, ctx, notes, used) -> dict[str, bool] | None:
    consent: dict[str, bool] = {}
    for item in (i for i in items if i.type == "Consent"):
        used.add(id(item.resource))
        if item.resource.status != "active":
            notes.append(
                Issue(item.at("status"), "not active: not used", "informational", "information")
            )
            continue
        top = item.resource.provision
        for sub in (top.provision or []) if top is not None else []:
            meaning = codes.ntx_codes().meaning_of_any(
                c for cc in sub.code or [] for c in codings(cc)
            )
            if meaning in ("notify_patient", "notify_external"):
                consent[meaning] = (sub.type or top.type) == "permit"
    return consent or None


def override(order: Item) -> dict[str, Any] | None:
    ext = extension(order.resource, codes.CLINICIAN_OVERRIDE)
    if ext is None:
        return None
    by = next((e.valueString for e in ext.extension or [] if e.url == "by"), None)
    reasons = [e.valueCode for e in ext.extension or [] if e.url == "code" and e.valueCode]
    return {"by": by, "codes": reasons}
