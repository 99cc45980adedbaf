"""Patient identity: ``Patient.identifier`` (system|value) maps to a random
pseudonymous ``patient_id``. The mapping lives behind :class:`PatientIds` (in memory
here; the service keeps it in its own schema, written in the same transaction as the
events). No event, log or metric carries an identifier."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Protocol

from services.gateway.domain.outcome import refuse
from services.gateway.domain.resources import PatientRef

Identifier = tuple[str, str]


class PatientIds(Protocol):
    """Where identifiers and pseudonyms are kept. Both calls run inside the caller's
    unit of work: a refused request rolls its new links back with everything else."""

    async def find(self, identifiers: Collection[Identifier]) -> dict[Identifier, str]: ...

    async def link(self, links: Mapping[Identifier, str]) -> None: ...


class InMemoryPatientIds:
    """The mapping in a dict: for the CLI and the unit tests."""

    def __init__(self) -> None:
        self.links: dict[Identifier, str] = {}

    async def find(self, identifiers: Collection[Identifier]) -> dict[Identifier, str]:
        return {i: self.links[i] for i in identifiers if i in self.links}

    async def link(self, links: Mapping[Identifier, str]) -> None:
        for identifier, patient_id in links.items():
            self.links.setdefault(identifier, patient_id)


def new_patient_id() -> str:
    """Random, so nothing about the patient can be read back from it (16 characters
    of ``[A-Za-z0-9_-]``, within the events' ``patient_id`` pattern)."""
    return secrets.token_urlsafe(12)


async def resolve(
    refs: Iterable[PatientRef], ids: PatientIds, mint: Callable[[], str] = new_patient_id
) -> dict[PatientRef, str]:
    """The ``patient_id`` of each patient a request names. Identifiers already known
    decide; a patient's other identifiers are linked to the same id; identifiers of
    two different NTX patients on one Patient are refused, never merged."""
    wanted = list(dict.fromkeys(refs))
    found = await ids.find({i for ref in wanted for i in ref})
    new_links: dict[Identifier, str] = {}
    out: dict[PatientRef, str] = {}
    for ref in wanted:
        known = {found[i] for i in ref if i in found}
        if len(known) > 1:
            raise refuse(
                "Patient.identifier",
                "these identifiers belong to different NTX patients; they are not merged",
                "conflict",
            )
        patient_id = known.pop() if known else mint()
        for identifier in ref:
            if identifier not in found:
                found[identifier] = new_links[identifier] = patient_id
        out[ref] = patient_id
    if new_links:
        await ids.link(new_links)
    return out
