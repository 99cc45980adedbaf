"""Halves made whole. ``lab.resulted`` needs ALT and AST of one specimen;
``uds.resulted`` needs the opiate screen (the fentanyl screen, when done, joins it).

Within one request, halves with the same patient and collection time are paired at
once. A lone ALT or AST is held (:class:`PendingResults`) until its partner arrives
and is then emitted as one ``lab.resulted``; the sender is told it is held, and a
result still alone after ``lone_result_wait`` is reported by
:func:`expired_results` (the service dead-letters it). The missing value is never
invented and the lone one never dropped silently. A fentanyl screen without an
opiate screen of the same specimen is refused: ``opioids_detected`` cannot be known.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from services.gateway.domain.facts import Fact, LabPart, ScreenPart
from services.gateway.domain.outcome import Issue
from shared.types import format_utc

ANALYTE_NAMES = {"alt": "ALT", "ast": "AST"}
OTHER = {"alt": "ast", "ast": "alt"}


def joint_key(keys: Iterable[str]) -> str:
    """One idempotency key for an event made of several resources, whatever order
    they came in (and whether together or apart)."""
    return "pair:" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:32]


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def lab_fact(alt: LabPart, ast: LabPart) -> Fact:
    return Fact(
        "ntx.lab.resulted.v1",
        alt.patient,
        {
            "collected_at": format_utc(alt.collected_at),
            "alt": json_number(alt.value),
            "ast": json_number(ast.value),
            "alt_uln": json_number(alt.uln),
            "ast_uln": json_number(ast.uln),
        },
        joint_key([alt.key, ast.key]),
        alt.path,
        {"alt": f"{alt.path}.valueQuantity.value", "ast": f"{ast.path}.valueQuantity.value"},
    )


def pair_labs(parts: list[LabPart]) -> tuple[list[Fact], list[LabPart], list[Issue]]:
    """Pairs within one request; the lone ones; conflicting duplicates as issues."""
    facts: list[Fact] = []
    lone: list[LabPart] = []
    issues: list[Issue] = []
    for group in _groups(parts).values():
        by = {a: [p for p in group if p.analyte == a] for a in ("alt", "ast")}
        chosen: dict[str, LabPart] = {}
        for analyte, found in by.items():
            if len({(p.value, p.uln) for p in found}) > 1:
                issues += [_two_results(p) for p in found]
            elif found:
                chosen[analyte] = found[0]
        if len(chosen) == 2:
            facts.append(lab_fact(chosen["alt"], chosen["ast"]))
        else:
            lone += chosen.values()
    return facts, lone, issues


def _groups(parts: Iterable[LabPart | ScreenPart]) -> dict[tuple, list]:
    groups: dict[tuple, list] = defaultdict(list)
    for p in parts:
        groups[(p.patient, p.collected_at)].append(p)
    return groups


def _two_results(p: LabPart | ScreenPart) -> Issue:
    return Issue(p.path, "another result of the same test, patient and time differs", "conflict")


def pair_screens(parts: list[ScreenPart]) -> tuple[list[Fact], list[Issue]]:
    facts: list[Fact] = []
    issues: list[Issue] = []
    for group in _groups(parts).values():
        by = {a: [p for p in group if p.analyte == a] for a in ("opiates", "fentanyl")}
        if any(len({p.detected for p in found}) > 1 for found in by.values()):
            issues += [_two_results(p) for p in group]
            continue
        if not by["opiates"]:
            issues += [_fentanyl_alone(p) for p in by["fentanyl"]]
            continue
        facts.append(screen_fact(by["opiates"][0], by["fentanyl"][0] if by["fentanyl"] else None))
    return facts, issues


def screen_fact(opiates: ScreenPart, fentanyl: ScreenPart | None) -> Fact:
    keys = [opiates.key] + ([fentanyl.key] if fentanyl else [])
    return Fact(
        "ntx.uds.resulted.v1",
        opiates.patient,
        {
            "collected_at": format_utc(opiates.collected_at),
            "opioids_detected": opiates.detected,
            # null = not tested: standard opiate immunoassays miss fentanyl (§3.1)
            "fentanyl_detected": fentanyl.detected if fentanyl else None,
        },
        opiates.key if fentanyl is None else joint_key(keys),
        opiates.path,
    )


def _fentanyl_alone(p: ScreenPart) -> Issue:
    return Issue(
        f"{p.path}.code",
        "a fentanyl screen alone cannot say whether opiates were detected: send it with "
        "the opiate screen of the same specimen (one Bundle or DiagnosticReport)",
        "business-rule",
    )


# --- lone ALT / AST across requests ---------------------------------------------------


@dataclass(frozen=True)
class HeldResult:
    patient_id: str
    analyte: Literal["alt", "ast"]
    collected_at: datetime
    value: Decimal
    uln: Decimal
    key: str
    resource: str
    path: str
    held_at: datetime


class PendingResults(Protocol):
    """Lone liver results waiting for their partner (in memory here; the service
    keeps them in its schema, in the request's transaction)."""

    async def peek(
        self, patient_id: str, collected_at: datetime, analyte: str
    ) -> HeldResult | None: ...

    async def take(
        self, patient_id: str, collected_at: datetime, analyte: str
    ) -> HeldResult | None: ...

    async def hold(self, result: HeldResult) -> None: ...

    async def expire(self, held_before: datetime) -> list[HeldResult]: ...

    async def resulted(self, parts: Iterable[Resulted]) -> None:
        """Remember results already sent in a ``lab.resulted``."""
        ...

    async def was_resulted(self, part: Resulted) -> bool: ...


#: A result sent in a ``lab.resulted``: (patient_id, collected_at, analyte, key).
Resulted = tuple[str, datetime, str, str]


class InMemoryPendingResults:
    def __init__(self) -> None:
        self.held: dict[tuple[str, datetime, str], HeldResult] = {}
        self.sent: set[Resulted] = set()

    async def resulted(self, parts: Iterable[Resulted]) -> None:
        self.sent.update(parts)

    async def was_resulted(self, part: Resulted) -> bool:
        return part in self.sent

    async def peek(self, patient_id: str, collected_at: datetime, analyte: str):
        return self.held.get((patient_id, collected_at, analyte))

    async def take(self, patient_id: str, collected_at: datetime, analyte: str):
        return self.held.pop((patient_id, collected_at, analyte), None)

    async def hold(self, result: HeldResult) -> None:
        self.held[(result.patient_id, result.collected_at, result.analyte)] = result

    async def expire(self, held_before: datetime) -> list[HeldResult]:
        gone = [k for k, r in self.held.items() if r.held_at < held_before]
        return [self.held.pop(k) for k in gone]


async def settle_lone(
    part: LabPart, patient_id: str, pending: PendingResults, now: datetime, wait_days: int
) -> Fact | Issue:
    """Pair ``part`` with a held partner, or hold it (unless this very resource was
    already sent in a ``lab.resulted``: a resend holds nothing). A different resource already
    held for the same test, patient and time is a conflict, not overwritten; a new
    version of the same resource replaces it (a correction before pairing)."""
    mine = (patient_id, part.collected_at, part.analyte, part.key)
    if await pending.was_resulted(mine):  # the same resource again: nothing new to hold
        return Issue(
            part.path,
            f"already sent in a lab.resulted with its {ANALYTE_NAMES[OTHER[part.analyte]]}: "
            "not held again",
            "informational",
            "information",
        )
    partner = await pending.take(patient_id, part.collected_at, OTHER[part.analyte])
    if partner is not None:
        theirs = (patient_id, partner.collected_at, partner.analyte, partner.key)
        await pending.resulted([mine, theirs])
        other = LabPart(
            partner.analyte,
            part.patient,
            partner.collected_at,
            partner.value,
            partner.uln,
            partner.key,
            partner.resource,
            partner.path,
        )
        alt, ast = (part, other) if part.analyte == "alt" else (other, part)
        return lab_fact(alt, ast)
    held = await pending.peek(patient_id, part.collected_at, part.analyte)
    if held is not None and held.resource != part.resource:
        return Issue(
            part.path,
            f"an {ANALYTE_NAMES[part.analyte]} of this patient and "
            "collection time is already held from another resource",
            "conflict",
        )
    await pending.hold(
        HeldResult(
            patient_id,
            part.analyte,
            part.collected_at,
            part.value,
            part.uln,
            part.key,
            part.resource,
            part.path,
            now,
        )
    )
    return Issue(
        part.path,
        f"held: lab.resulted is sent when the {ANALYTE_NAMES[OTHER[part.analyte]]} collected "
        f"at the same time arrives (held up to {wait_days} days, then reported)",
        "incomplete",
        "information",
    )


async def expired_results(pending: PendingResults, now: datetime, wait) -> list[Issue]:
    """Lone results held longer than ``wait``: each becomes an error to report (the
    service dead-letters it), so nothing waits forever unseen."""
    return [
        Issue(
            r.path,
            f"{ANALYTE_NAMES[r.analyte]} collected at {format_utc(r.collected_at)} had no "
            f"{ANALYTE_NAMES[OTHER[r.analyte]]} within the wait: no lab.resulted was sent",
            "incomplete",
        )
        for r in await pending.expire(now - wait)
    ]
