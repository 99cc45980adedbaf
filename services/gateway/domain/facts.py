"""What a resource means, before its patient is resolved to a pseudonymous id:
a whole event (:class:`Fact`), or half of one that must be paired (a liver value,
a urine screen of one drug class)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from services.gateway.domain.outcome import Issue
from services.gateway.domain.resources import PatientRef

GATEWAY_SOURCE = "ntx/gateway"


@dataclass(frozen=True)
class Fact:
    """One NTX event: its type, its data without ``patient_id``, the idempotency key
    of what caused it, and the FHIR path of each data field (so an event model's
    refusal names the FHIR element, not the NTX field)."""

    type: str
    patient: PatientRef
    data: dict[str, Any]
    key: str
    path: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LabPart:
    """An ALT or AST result: ``lab.resulted`` needs both, collected together."""

    analyte: Literal["alt", "ast"]
    patient: PatientRef
    collected_at: datetime
    value: Decimal
    uln: Decimal
    key: str
    resource: str  # ``Observation/id`` (or the key): a new version replaces a held one
    path: str


@dataclass(frozen=True)
class ScreenPart:
    """A urine opiate or fentanyl screen: detected or not."""

    analyte: Literal["opiates", "fentanyl"]
    detected: bool
    patient: PatientRef
    collected_at: datetime
    key: str
    path: str


Meaning = Fact | LabPart | ScreenPart | Issue


@dataclass(frozen=True)
class Context:
    """One request: its resources (for references) and when it arrived."""

    index: Any  # resources.Index
    now: datetime
