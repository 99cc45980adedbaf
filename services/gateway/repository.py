"""What the gateway keeps, as one contract with two implementations: in memory here
(``ntx fhir translate``, unit tests) and in PostgreSQL (:mod:`services.gateway.store`).
``tests/unit/gateway/test_repository.py`` runs both against the same tests.

Besides the domain's identities and held lab results, the gateway remembers each
event id it has written: event ids derive from the causing resources (id and
version, or a Bundle entry's ``fullUrl``), so the same resource sent again yields
the same ids, and those are answered but not written a second time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.gateway.domain.identity import InMemoryPatientIds, PatientIds
from services.gateway.domain.pairing import InMemoryPendingResults, PendingResults
from services.gateway.domain.translate import Repositories


class SentEvents(Protocol):
    async def first_time(self, events: Iterable[dict[str, Any]], at: datetime) -> set[str]:
        """Records the events' ids; returns those not recorded before."""
        ...


class InMemorySentEvents:
    def __init__(self) -> None:
        self.sent: dict[str, str] = {}

    async def first_time(self, events: Iterable[dict[str, Any]], at: datetime) -> set[str]:
        events = list(events)
        fresh = {e["id"] for e in events if e["id"] not in self.sent}
        for e in events:
            self.sent.setdefault(e["id"], e["type"])
        return fresh


@dataclass(frozen=True)
class GatewayRepos:
    """The gateway's repositories inside one unit of work."""

    patient_ids: PatientIds
    pending_results: PendingResults
    sent_events: SentEvents

    @property
    def translation(self) -> Repositories:
        return Repositories(self.patient_ids, self.pending_results)


def in_memory() -> GatewayRepos:
    return GatewayRepos(InMemoryPatientIds(), InMemoryPendingResults(), InMemorySentEvents())
