"""A surgery or other procedure, planned (``ServiceRequest``) or recorded
(``Procedure``, also after the fact: an emergency), with whether it will need opioid
analgesia -> ``procedure.scheduled`` (DESIGN.md §8, §4.2)."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.gateway.domain.codes import REQUIRES_OPIOID_ANALGESIA
from services.gateway.domain.facts import Context, Fact, Meaning
from services.gateway.domain.outcome import refuse
from services.gateway.domain.resources import Item, extension, local_day, patient_of

#: Statuses under which a procedure is still going to happen, or has happened.
LIVE = {
    "Procedure": frozenset({"preparation", "in-progress", "completed"}),
    "ServiceRequest": frozenset({"active", "completed"}),
}


def planned(item: Item) -> tuple[date, bool]:
    """The procedure's date (local, as the sender wrote it) and whether it needs
    opioid analgesia. NTX cannot cancel a procedure it was told of, so a revoked or
    entered-in-error one is refused rather than silently ignored."""
    r = item.resource
    if r.status not in LIVE[item.type]:
        raise refuse(
            item.at("status"),
            f"{r.status}: NTX takes procedures that are planned or done "
            f"({', '.join(sorted(LIVE[item.type]))}); it has no cancellation event",
            "not-supported",
        )
    element, when = _when(item)
    return local_day(when, item.at(element)), requires_opioids(item)


def _when(item: Item) -> tuple[str, Any]:
    r = item.resource
    if item.type == "Procedure":
        if r.performedDateTime is not None:
            return "performedDateTime", r.performedDateTime
        period = r.performedPeriod
        return "performedPeriod.start", period.start if period is not None else None
    if r.occurrenceDateTime is not None:
        return "occurrenceDateTime", r.occurrenceDateTime
    period = r.occurrencePeriod
    return "occurrencePeriod.start", period.start if period is not None else None


def requires_opioids(item: Item) -> bool:
    ext = extension(item.resource, REQUIRES_OPIOID_ANALGESIA)
    if ext is None or ext.valueBoolean is None:
        raise refuse(
            item.at(f"extension('{REQUIRES_OPIOID_ANALGESIA}')"),
            "required: whether the procedure will need opioid analgesia (valueBoolean)",
            "required",
        )
    return bool(ext.valueBoolean)


def procedure(item: Item, ctx: Context) -> list[Meaning]:
    day, needs_opioids = planned(item)
    element = _when(item)[0]
    return [
        Fact(
            "ntx.procedure.scheduled.v1",
            patient_of(item, ctx.index),
            {"date": day.isoformat(), "requires_opioid_analgesia": needs_opioids},
            item.key,
            item.path,
            {"date": item.at(element)},
        )
    ]
