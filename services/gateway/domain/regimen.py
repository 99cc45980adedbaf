"""The naltrexone order's formulation and regimen (DESIGN.md §3.1): ``formulation``
from the product, and for oral orders ``oral_regimen`` (daily, or Monday, Wednesday
and Friday), ``induction_days`` (days of 25 mg first) and ``dose_time`` from
``dosageInstruction``. Absent fields take §3.1's defaults; a timing NTX cannot read
is refused, never approximated."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.gateway.domain import codes
from services.gateway.domain.facts import Context
from services.gateway.domain.medications import naltrexone_product
from services.gateway.domain.outcome import refuse
from services.gateway.domain.resources import Item, codings

MWF = ["fri", "mon", "wed"]
#: §4.2: induction doses are 25 mg.
INDUCTION_DOSE_MG = Decimal(25)


def regimen(order: Item, ctx: Context) -> dict[str, Any]:
    dosages = list(order.resource.dosageInstruction or [])
    route = _route(order, dosages)
    formulation = naltrexone_product(order, ctx, route)
    out: dict[str, Any] = {"formulation": formulation}
    times = [
        (i, t)
        for i, d in enumerate(dosages)
        if _repeat(d) is not None
        for t in _repeat(d).timeOfDay or []
    ]
    if times:
        out["dose_time"] = str(times[0][1])[:5]
    if formulation == "oral":
        out.update(_oral(order, dosages))
    return out


def _route(order: Item, dosages: list[Any]) -> str | None:
    for i, d in enumerate(dosages):
        if d.route is not None:
            meaning = codes.routes().meaning_of_any(codings(d.route))
            if meaning is None:
                raise refuse(
                    order.at(f"dosageInstruction[{i}].route"),
                    "not oral or intramuscular",
                    "code-invalid",
                )
            return meaning
    return None


def _repeat(dosage: Any) -> Any:
    return dosage.timing.repeat if dosage.timing is not None else None


def _oral(order: Item, dosages: list[Any]) -> dict[str, Any]:
    """Induction is the 25 mg dosage bounded in days; the rest is the regimen: days
    of the week together Monday, Wednesday and Friday (100/100/150 mg, however the
    order splits them, with any daily step-up beside them), or once a day."""
    out: dict[str, Any] = {}
    days: set[str] = set()
    for i, d in enumerate(dosages):
        at = order.at(f"dosageInstruction[{i}]")
        repeat = _repeat(d)
        if repeat is None:
            continue
        if _dose(d) == INDUCTION_DOSE_MG and repeat.boundsDuration is not None:
            out["induction_days"] = _days(
                repeat.boundsDuration, f"{at}.timing.repeat.boundsDuration"
            )
        elif repeat.dayOfWeek:
            days.update(repeat.dayOfWeek)
        elif not (
            repeat.frequency in (None, 1) and repeat.period == 1 and repeat.periodUnit == "d"
        ):
            raise refuse(
                f"{at}.timing",
                "NTX reads daily, or Monday/Wednesday/Friday, dosing",
                "not-supported",
            )
    if days and sorted(days) != MWF:
        raise refuse(
            order.at("dosageInstruction"),
            "days of the week other than Monday, Wednesday and Friday",
            "not-supported",
        )
    if days or any(_repeat(d) is not None for d in dosages):
        out["oral_regimen"] = "mwf" if days else "daily"
    return out


def _dose(dosage: Any) -> Decimal | None:
    for dr in dosage.doseAndRate or []:
        if dr.doseQuantity is not None and dr.doseQuantity.value is not None:
            return Decimal(dr.doseQuantity.value)
    return None


def _days(duration: Any, at: str) -> int:
    if (duration.code or duration.unit) not in ("d", "day", "days") or duration.value is None:
        raise refuse(at, "a number of days (UCUM 'd')", "value")
    value = Decimal(duration.value)
    if value != value.to_integral_value():
        raise refuse(f"{at}.value", "a whole number of days", "value")
    return int(value)
