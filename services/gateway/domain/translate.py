"""FHIR R4 JSON -> the NTX events it means (DESIGN.md §8), as CloudEvents.

:func:`translate` is the one implementation the service, ``ntx fhir translate`` and
the tests run. It reads the request, works out each resource's meaning, pairs
halves, resolves patients to pseudonyms, and builds events validated against the
same models every NTX service reads. Event ids derive from the causing resources'
idempotency keys, so the same resource sent again gives the same event ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.gateway.domain.documents import Document, document
from services.gateway.domain.facts import (
    GATEWAY_SOURCE,
    Context,
    Fact,
    LabPart,
    Meaning,
    ScreenPart,
)
from services.gateway.domain.identity import PatientIds, resolve
from services.gateway.domain.intake import CONTEXT_ONLY, intake_data, intake_key, intake_order
from services.gateway.domain.medications import administration, stopped
from services.gateway.domain.observations import observation
from services.gateway.domain.outcome import Issue, Refused, operation_outcome, refuse
from services.gateway.domain.pairing import PendingResults, pair_labs, pair_screens, settle_lone
from services.gateway.domain.parse import load_json, parse_resource
from services.gateway.domain.procedures import procedure
from services.gateway.domain.resources import Item, patient_of
from services.gateway.domain.settings import DEFAULT_SETTINGS, GatewaySettings
from shared.envelope import Envelope, InvalidEvent, build, stable_id, typed
from shared.recorded import check_recorded_times

Interpreter = Callable[[Item, Context], list[Meaning]]
INTERPRETERS: dict[str, Interpreter] = {
    "MedicationAdministration": administration,
    "Observation": observation,
    "Procedure": procedure,
    "ServiceRequest": procedure,
    "MedicationStatement": stopped,
    "MedicationRequest": stopped,
}


@dataclass(frozen=True)
class Repositories:
    """The state translation needs: identities and held lone lab results."""

    patient_ids: PatientIds
    pending_results: PendingResults


@dataclass
class Translation:
    """The events of an accepted request, and what the sender should know: notes
    (held results, unused resources) and, for a batch, the entries refused."""

    events: list[dict[str, Any]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    #: The FHIR path of the resource behind each event (for a Bundle's per-entry answer).
    paths: list[str] = field(default_factory=list)

    @property
    def refused_entries(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


async def translate(
    raw: bytes | str,
    repos: Repositories,
    now: datetime,
    settings: GatewaySettings = DEFAULT_SETTINGS,
) -> Translation:
    """Raises :class:`Refused` when nothing of the request can be accepted."""
    doc = document(parse_resource(load_json(raw, settings), settings=settings), settings)
    ctx = Context(doc.index, now)
    meanings, issues = _interpret(doc, ctx)
    facts, lone = _pair(meanings, issues)
    _check(doc, issues)
    patients = await resolve(
        [f.patient for f in facts] + [p.patient for p in lone], repos.patient_ids
    )
    await repos.pending_results.resulted(
        (patients[p.patient], p.collected_at, p.analyte, p.key)
        for p in _paired(meanings, lone, issues)
    )
    wait = settings.lone_result_wait
    for part in lone:
        settled = await settle_lone(
            part, patients[part.patient], repos.pending_results, now, wait.days
        )
        if isinstance(settled, Fact):  # answered where this request sent its half
            facts.append(replace(settled, path=part.path))
        else:
            issues.append(settled)
    events, paths = [], []
    for fact in facts:
        try:
            events.append(event(fact, patients[fact.patient], now))
            paths.append(fact.path)
        except Refused as exc:
            issues += exc.issues
    _check(doc, issues)
    return Translation(events, issues, paths)


def _interpret(doc: Document, ctx: Context) -> tuple[list[Meaning], list[Issue]]:
    issues = list(doc.issues)
    order = intake_order(doc.items, ctx)
    if order is not None:
        data, notes = intake_data(order, doc.items, ctx)
        fact = Fact(
            "ntx.intake.requested.v1",
            patient_of(order, ctx.index),
            data,
            intake_key(doc.items),
            order.path,
        )
        return [fact], issues + notes
    meanings: list[Meaning] = []
    for item in doc.items:
        try:
            meanings += interpret(item, ctx)
        except Refused as exc:
            issues += exc.issues
    return meanings, issues


def interpret(item: Item, ctx: Context) -> list[Meaning]:
    """One resource outside an intake: its meaning, or :class:`Refused`."""
    handler = INTERPRETERS.get(item.type)
    if handler is not None:
        return handler(item, ctx)
    if item.type in CONTEXT_ONLY:
        return (
            [report_results(item, ctx)]
            if item.type == "DiagnosticReport"
            else [
                Issue(
                    item.path,
                    "context for other entries: no event of its own",
                    "informational",
                    "information",
                )
            ]
        )
    raise refuse(
        item.path, f"a {item.type} means nothing to NTX outside an intake Bundle", "not-supported"
    )


def report_results(item: Item, ctx: Context) -> Issue:
    """A DiagnosticReport groups results; they must be in this request (as entries,
    or contained), since NTX fetches nothing. Contained results are not yet
    supported as separate meanings: they are refused by name."""
    for i, ref in enumerate(item.resource.result or []):
        target = ctx.index.resolve(ref.reference, item)
        if target is None or target.type != "Observation":
            raise refuse(
                item.at(f"result[{i}]"),
                "not an Observation in this request: send the results with the report",
                "not-found",
            )
        if target.path.startswith(item.path):
            raise refuse(
                item.at(f"result[{i}]"),
                "contained results: send them as Bundle entries",
                "not-supported",
            )
    return Issue(
        item.path, "groups results sent as their own entries", "informational", "information"
    )


def _pair(meanings: list[Meaning], issues: list[Issue]) -> tuple[list[Fact], list[LabPart]]:
    facts = [m for m in meanings if isinstance(m, Fact)]
    issues += [m for m in meanings if isinstance(m, Issue)]
    lab_facts, lone, lab_issues = pair_labs([m for m in meanings if isinstance(m, LabPart)])
    screen_facts, screen_issues = pair_screens([m for m in meanings if isinstance(m, ScreenPart)])
    issues += lab_issues + screen_issues
    return facts + lab_facts + screen_facts, lone


def _paired(meanings: list[Meaning], lone: list[LabPart], issues: list[Issue]) -> list[LabPart]:
    """The ALT and AST results this request pairs itself: neither lone nor refused as
    conflicting with another result of the same test."""
    conflicting = {i.expression for i in issues if i.code == "conflict"}
    return [
        m
        for m in meanings
        if isinstance(m, LabPart) and m not in lone and m.path not in conflicting
    ]


def _check(doc: Document, issues: list[Issue]) -> None:
    """A single resource, a transaction, a collection or an intake is refused
    whole on any error; a batch or notification keeps its good entries."""
    errors = [i for i in issues if i.is_error]
    if errors and doc.mode != "each_entry":
        raise Refused(errors)


def event(fact: Fact, patient_id: str, now: datetime) -> dict[str, Any]:
    """The CloudEvent of ``fact``, checked by the event's own model and the recorded
    time check every NTX service applies; a refusal names the FHIR element."""
    try:
        envelope = build(
            fact.type,
            {"patient_id": patient_id, **fact.data},
            source=GATEWAY_SOURCE,
            time=now,
            id_=stable_id("gateway", fact.type, fact.key),
        )
    except KeyError:
        raise refuse(fact.path, f"NTX has no event type {fact.type} yet", "not-supported") from None
    try:
        checked = typed(Envelope.model_validate_json(json.dumps(envelope)))
        check_recorded_times(checked, now)
    except InvalidEvent as exc:
        name = exc.field.removeprefix("data.").split(".")[0]
        raise refuse(fact.fields.get(name, fact.path), f"{name}: {exc.message}", "value") from None
    return envelope
