"""CDS Hooks 2.0, the pure part (DESIGN.md §8): the discovery document for
``GET /cds-services`` and the ``order-sign`` service for naltrexone orders.

The service builds the §3.1 intake request from the draft order and the prefetched
resources (the same builder as an intake Bundle) and runs the SAME intake rules as
the intake service (``services/intake/domain``). Rejected -> a ``critical`` card,
deferred -> ``warning`` with the earliest start date, accepted -> ``info`` with the
plan. It stores nothing: the patient gets a throwaway pseudonym, no identity is
mapped, no event is written.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from services.gateway.domain import codes
from services.gateway.domain.facts import Context
from services.gateway.domain.intake import intake_data, intake_order
from services.gateway.domain.outcome import Issue, Refused, refuse
from services.gateway.domain.parse import load_json, parse_resource
from services.gateway.domain.resources import Index, Item
from services.intake.domain.rules import IntakeInputError, evaluate
from shared.envelope import all_errors
from shared.events import IntakeDecided, IntakeRequested
from shared.localtime import local_today

SERVICE_ID = "ntx-naltrexone-order-sign"
#: Never stored or sent anywhere: the rules need some patient_id to run.
EVALUATION_PATIENT = "cds-evaluation"
SOURCE = {"label": "NTX naltrexone intake rules", "topic": {"code": "naltrexone-start"}}
INDICATOR = {"rejected": "critical", "deferred": "warning", "accepted": "info"}
PATIENT = "{{context.patientId}}"


def discovery() -> dict[str, Any]:
    """``GET /cds-services``: one order-sign service and the prefetch it needs."""
    return {
        "services": [
            {
                "hook": "order-sign",
                "id": SERVICE_ID,
                "title": "NTX naltrexone start check",
                "description": (
                    "Checks a naltrexone order against NTX's intake rules (opioid-free "
                    "window, urine screen, naloxone challenge, liver tests, "
                    "contraindications) and answers why, and from when, it may start."
                ),
                "prefetch": _prefetch(),
            }
        ]
    }


def _prefetch() -> dict[str, str]:
    tests = codes.lab_tests()
    screens = ",".join(_tokens(tests.codings("opiates") + tests.codings("fentanyl")))
    liver = ",".join(_tokens(tests.codings("alt") + tests.codings("ast")))
    challenge = ",".join(_tokens(codes.ntx_codes().codings("naloxone_challenge")))
    return {
        "patient": f"Patient/{PATIENT}",
        "opioidUse": f"MedicationStatement?patient={PATIENT}",
        "urineScreens": f"Observation?patient={PATIENT}&code={screens}",
        "naloxoneChallenge": f"Observation?patient={PATIENT}&code={challenge}",
        "liverPanel": f"Observation?patient={PATIENT}&code={liver}",
        "conditions": f"Condition?patient={PATIENT}",
        "allergies": f"AllergyIntolerance?patient={PATIENT}",
        "procedures": f"ServiceRequest?patient={PATIENT}&status=active",
        "consent": f"Consent?patient={PATIENT}&status=active",
    }


def _tokens(codings: list[dict[str, str]]) -> list[str]:
    return [f"{c['system']}|{c['code']}" for c in codings]


class HookRequest(BaseModel):
    """The parts of a CDS Hooks request the service reads (others are allowed)."""

    model_config = ConfigDict(extra="allow")

    hook: str
    hookInstance: str
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


def order_sign(raw: bytes | str, now: datetime, as_of: date | None = None) -> dict[str, Any]:
    """The cards for an order-sign request. Malformed requests raise
    :class:`Refused`; an order whose facts NTX cannot read gets a warning card
    naming what is missing, since the clinician signing it needs to know."""
    request = _request(raw)
    items = _items(request)
    ctx = Context(Index(items), now)
    order = intake_order(items, ctx)
    if order is None:
        return {"cards": []}  # not a naltrexone order: nothing to say
    try:
        data, _notes = intake_data(order, items, ctx)
        intake = _intake(data)
        day = as_of or local_today(now, intake.timezone)
        decided = evaluate(intake, day)
    except Refused as exc:
        return {"cards": [_unchecked(request, exc.issues)]}
    except IntakeInputError as exc:
        issues = [Issue(f, m) for f, m in exc.errors]
        return {"cards": [_unchecked(request, issues)]}
    return {"cards": [card(decided, request.hookInstance)]}


def _request(raw: bytes | str) -> HookRequest:
    try:
        request = HookRequest.model_validate(load_json(raw))
    except ValidationError as exc:
        raise Refused([Issue(e.field, e.message, "structure") for e in all_errors(exc)]) from None
    if request.hook != "order-sign":
        raise refuse("hook", f"{request.hook}: this service answers order-sign", "not-supported")
    return request


def _items(request: HookRequest) -> list[Item]:
    orders = request.context.get("draftOrders")
    if not isinstance(orders, dict):
        raise refuse("context.draftOrders", "required: a Bundle of the draft orders", "required")
    items = [i for i in _resources(orders, "context.draftOrders") if i.type == "MedicationRequest"]
    for name, value in (request.prefetch or {}).items():
        if value is not None:  # null: the EHR could not prefetch it; absent facts
            items += _resources(value, f"prefetch.{name}")
    return items


def _resources(value: Any, at: str) -> list[Item]:
    if not isinstance(value, dict):
        raise refuse(at, "expected a FHIR resource or Bundle", "structure")
    resource: Any = parse_resource(value, at)
    if resource.get_resource_type() != "Bundle":
        return [Item(resource, at, at)]
    return [
        Item(e.resource, f"{at}.entry[{i}].resource", f"{at}.entry[{i}]", e.fullUrl)
        for i, e in enumerate(resource.entry or [])
        if e.resource is not None and e.resource.get_resource_type() != "OperationOutcome"
    ]


def _intake(data: dict[str, Any]) -> IntakeRequested:
    try:
        return IntakeRequested.model_validate_json(
            json.dumps({"patient_id": EVALUATION_PATIENT, **data})
        )
    except ValidationError as exc:
        raise Refused(
            [Issue(f"intake request.{e.field}", e.message) for e in all_errors(exc)]
        ) from None


def card(decided: IntakeDecided, hook_instance: str) -> dict[str, Any]:
    """One card per decision, with every reason and (accepted) the plan."""
    reasons = "\n".join(f"* {r.message} (`{r.code}`)" for r in decided.reasons)
    if decided.decision == "rejected":
        summary = "Naltrexone is not advised: " + ", ".join(r.code for r in decided.reasons)
        detail = reasons
    elif decided.decision == "deferred":
        start = decided.earliest_start_date
        summary = (
            f"Naltrexone start deferred until {start}"
            if start
            else ("Naltrexone start deferred: no start date until the reasons below are resolved")
        )
        detail = reasons + (f"\n\nEarliest start: **{start}**" if start else "")
    else:
        summary, detail = _plan_text(decided)
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ntx:cds:{hook_instance}")),
        "summary": summary[:140],
        "indicator": INDICATOR[decided.decision],
        "detail": detail + _advisories(decided),
        "source": SOURCE,
    }


def _plan_text(decided: IntakeDecided) -> tuple[str, str]:
    plan = decided.plan
    assert plan is not None  # an accepted decision always carries its plan
    if plan.formulation == "xr":
        what = "380 mg extended-release injection every 28 days"
    else:
        what = f"oral, {plan.oral_regimen}, {plan.induction_days} day(s) of 25 mg first"
    summary = f"Naltrexone may start {plan.start_date}: {what}"
    detail = (
        f"* start {plan.start_date}, doses at {plan.dose_time.strftime('%H:%M')} {plan.timezone}\n"
        f"* liver tests every {plan.lft_interval_months} month(s), urine screens every "
        f"{plan.uds_interval_days} days, review after {plan.review_after_months} months"
    )
    return summary, detail


def _advisories(decided: IntakeDecided) -> str:
    return (
        ("\n\nAdvisories: " + ", ".join(f"`{a}`" for a in decided.advisories))
        if decided.advisories
        else ""
    )


def _unchecked(request: HookRequest, issues: list[Issue]) -> dict[str, Any]:
    lines = "\n".join(f"* `{i.expression}`: {i.message}" for i in issues if i.is_error)
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ntx:cds:{request.hookInstance}")),
        "summary": "NTX could not check this naltrexone order: facts are missing or unclear",
        "indicator": "warning",
        "detail": lines,
        "source": SOURCE,
    }
