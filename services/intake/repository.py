"""Intake's tables behind its unit of work: the request on file per patient (the one
a later request must be newer than) and the append-only decision audit. One
PostgreSQL implementation, one in memory for handler tests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

from services.intake.domain.stored import STORED, stored_json
from shared.events import IntakeRequested
from shared.memory import MemoryRepository
from shared.plumbing import PgRepository
from shared.unit_of_work import UnitOfWork


class OnFile(NamedTuple):
    """A patient's current request, with the decision it last got."""

    source: str
    id: str
    requested_at: datetime
    request: IntakeRequested
    decision: str


class Audited(NamedTuple):
    """One row of the decision audit (``decisions``), in its columns' order."""

    patient_id: str
    request_source: str
    request_id: str
    decided_at: datetime
    as_of: date
    trigger: str
    ruleset_version: str
    decision: str
    reasons: list[Any]
    earliest_start_date: date | None
    advisories: list[Any]
    plan: dict[str, Any] | None
    event_id: str | None
    overridden_by: str | None
    overridden: list[str]


class Requests(Protocol):
    async def requested_at(self, patients: set[str]) -> dict[str, datetime]:
        """When each patient's request on file was made (patients with none left out)."""

    async def on_file(self, patient_id: str) -> OnFile | None: ...

    async def keep(self, current: list[OnFile]) -> None:
        """Put these requests on file, replacing the patients' earlier ones."""

    async def decided(self, patient_id: str, decision: str) -> None:
        """Record a new decision on the request on file (a re-check)."""

    def audit(self, row: Audited) -> None: ...


AUDIT = (
    "INSERT INTO decisions (patient_id, request_source, request_id, decided_at, as_of, trigger,"
    " ruleset_version, decision, reasons, earliest_start_date, advisories, plan, event_id,"
    " overridden_by, overridden)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)
KEEP = (
    "INSERT INTO patients (patient_id, request_source, request_id, requested_at, request,"
    " decision, updated_at) VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7)"
    " ON CONFLICT (patient_id) DO UPDATE SET"
    " request_source = EXCLUDED.request_source, request_id = EXCLUDED.request_id,"
    " requested_at = EXCLUDED.requested_at, request = EXCLUDED.request,"
    " decision = EXCLUDED.decision, updated_at = EXCLUDED.updated_at"
)


class PgRequests(PgRepository):
    async def requested_at(self, patients: set[str]) -> dict[str, datetime]:
        rows = await self.conn.fetch(
            "SELECT patient_id, requested_at FROM patients WHERE patient_id = ANY($1)",
            list(patients),
        )
        return {r["patient_id"]: r["requested_at"] for r in rows}

    async def on_file(self, patient_id: str) -> OnFile | None:
        row = await self.conn.fetchrow(
            "SELECT request_source, request_id, requested_at, request::text AS request,"
            " decision FROM patients WHERE patient_id = $1",
            patient_id,
        )
        if row is None:
            return None
        request = STORED.load(row["request"])
        return OnFile(
            row["request_source"], row["request_id"], row["requested_at"], request, row["decision"]
        )

    async def keep(self, current: list[OnFile]) -> None:
        now = self.uow.now
        await self.conn.executemany(
            KEEP,
            [
                (c.request.patient_id, c.source, c.id, c.requested_at, stored_json(c.request))
                + (c.decision, now)
                for c in current
            ],
        )

    async def decided(self, patient_id: str, decision: str) -> None:
        await self.conn.execute(
            "UPDATE patients SET decision = $2, updated_at = $3 WHERE patient_id = $1",
            patient_id,
            decision,
            self.uow.now,
        )

    def audit(self, row: Audited) -> None:
        self.uow.defer(AUDIT, tuple(row))


class MemoryRequests(MemoryRepository):
    """The same tables in memory; the request is kept as its stored JSON, so it loads
    through the same upcasters as a row does."""

    def __init__(self, uow: UnitOfWork[Any]):
        super().__init__(uow)
        self.patients = self.store.table("patients")
        self.decisions = self.store.table("decisions")

    async def requested_at(self, patients: set[str]) -> dict[str, datetime]:
        return {p: self.patients[p][2] for p in patients if p in self.patients}

    async def on_file(self, patient_id: str) -> OnFile | None:
        row = self.patients.get(patient_id)
        if row is None:
            return None
        source, id_, requested_at, request, decision = row
        return OnFile(source, id_, requested_at, STORED.load(request), decision)

    async def keep(self, current: list[OnFile]) -> None:
        for c in current:
            self.patients[c.request.patient_id] = (*c[:3], stored_json(c.request), c.decision)

    async def decided(self, patient_id: str, decision: str) -> None:
        self.patients[patient_id] = (*self.patients[patient_id][:4], decision)

    def audit(self, row: Audited) -> None:
        self.decisions[len(self.decisions)] = row
