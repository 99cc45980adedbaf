"""Observations NTX reads (DESIGN.md §8): ALT and AST (each half of a
``lab.resulted``, ``referenceRange.high`` the upper limit of normal), urine opiate and
fentanyl screens (``uds.resulted``), and the naloxone challenge of an intake."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from services.gateway.domain import codes
from services.gateway.domain.facts import Context, LabPart, Meaning, ScreenPart
from services.gateway.domain.outcome import refuse
from services.gateway.domain.resources import Item, codings, instant, local_day, patient_of

#: Results that count: a preliminary or cancelled result is not acted on.
FINAL = frozenset({"final", "amended", "corrected"})
#: Transaminase activity units: UCUM ``U/L`` (the international unit per litre is
#: the same quantity for these enzymes).
ENZYME_UNITS = frozenset({"U/L", "[IU]/L", "IU/L"})


def test_of(item: Item) -> str:
    """``alt``, ``ast``, ``opiates``, ``fentanyl`` or ``naloxone_challenge``."""
    concept = item.resource.code
    test = codes.lab_tests().meaning_of_any(codings(concept))
    if test is None and codes.ntx_codes().meaning_of_any(codings(concept)) == "naloxone_challenge":
        test = "naloxone_challenge"
    if test is None:
        raise refuse(
            item.at("code"),
            "not a test NTX reads (LOINC ALT 1742-6, AST 1920-8, urine opiate or fentanyl "
            "screen; see the gateway's code tables)",
            "code-invalid",
        )
    return test


def observation(item: Item, ctx: Context) -> list[Meaning]:
    test = test_of(item)
    if test == "naloxone_challenge":
        raise refuse(
            item.at("code"),
            "a naloxone challenge means something only inside an intake Bundle",
            "not-supported",
        )
    _check_final(item)
    patient = patient_of(item, ctx.index)
    collected = instant(_effective(item), item.at("effectiveDateTime"))
    if test in ("alt", "ast"):
        value, uln = liver_value(item)
        ident = f"Observation/{item.resource.id}" if item.resource.id else item.key
        return [LabPart(test, patient, collected, value, uln, item.key, ident, item.path)]  # type: ignore[arg-type]
    return [ScreenPart(test, detected(item), patient, collected, item.key, item.path)]  # type: ignore[arg-type]


def _check_final(item: Item) -> None:
    if item.resource.status not in FINAL:
        raise refuse(
            item.at("status"),
            f"{item.resource.status}: only final, amended or corrected results are acted on",
            "business-rule",
        )


def _effective(item: Item) -> Any:
    r = item.resource
    if r.effectiveDateTime is not None:
        return r.effectiveDateTime
    if r.effectiveInstant is not None:
        return r.effectiveInstant
    return r.effectivePeriod.start if r.effectivePeriod is not None else None


def specimen_day(item: Item) -> date:
    return local_day(_effective(item), item.at("effectiveDateTime"))


def liver_value(item: Item) -> tuple[Decimal, Decimal]:
    """The result and its upper limit of normal, both in U/L, exact."""
    q = item.resource.valueQuantity
    if q is None or q.value is None:
        raise refuse(item.at("valueQuantity.value"), "required: the result in U/L", "required")
    _check_unit(q, item.at("valueQuantity"))
    highs = {
        Decimal(rr.high.value)
        for rr in item.resource.referenceRange or []
        if rr.high is not None and rr.high.value is not None
    }
    if len(highs) != 1:
        problem = "required" if not highs else "several different upper limits"
        raise refuse(item.at("referenceRange.high"), f"{problem}: the upper limit of normal")
    for i, rr in enumerate(item.resource.referenceRange or []):
        if rr.high is not None and rr.high.value is not None:
            _check_unit(rr.high, item.at(f"referenceRange[{i}].high"))
    uln = highs.pop()
    if uln <= 0 or Decimal(q.value) < 0:
        raise refuse(item.at("valueQuantity.value"), "results and limits cannot be negative")
    return Decimal(q.value), uln


def _check_unit(quantity: Any, at: str) -> None:
    unit = quantity.code or quantity.unit
    if unit not in ENZYME_UNITS:
        raise refuse(f"{at}.code", f"unit {unit!r}: expected U/L", "value")


def detected(item: Item) -> bool:
    """A qualitative result: the interpretation (POS/NEG, DET/ND) or the value (a
    boolean, or a coded positive/negative). Both given and disagreeing is refused."""
    r = item.resource
    table = codes.results()
    said = []
    by_interpretation = table.meaning_of_any(c for i in r.interpretation or [] for c in codings(i))
    if by_interpretation is not None:
        said.append(by_interpretation == "true")
    if r.valueBoolean is not None:
        said.append(bool(r.valueBoolean))
    elif r.valueCodeableConcept is not None:
        by_value = table.meaning_of_any(codings(r.valueCodeableConcept))
        if by_value is None:
            raise refuse(
                item.at("valueCodeableConcept"), "not a positive or negative result", "code-invalid"
            )
        said.append(by_value == "true")
    if not said:
        raise refuse(
            item.at("interpretation"),
            "required: POS/NEG (or DET/ND), or a boolean or coded value",
            "required",
        )
    if len(set(said)) > 1:
        raise refuse(item.at("interpretation"), "disagrees with the value", "conflict")
    return said[0]


def challenge(item: Item) -> tuple[date, str]:
    """A naloxone challenge of an intake: its date and ``positive`` / ``negative``."""
    _check_final(item)
    return specimen_day(item), "positive" if detected(item) else "negative"
