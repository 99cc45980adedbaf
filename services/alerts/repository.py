"""The alerts service's tables behind its unit of work: each patient's alert state
(one document) and the append-only audit of alert transitions and notification
requests. One PostgreSQL implementation, one in memory (handler tests and
``ntx alerts replay``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Protocol

from services.alerts.domain.state import STORED as ALERT_STATE
from services.alerts.domain.state import PatientAlertState
from shared.memory import MemoryRepository
from shared.plumbing import PgRepository
from shared.unit_of_work import UnitOfWork


class Audited(NamedTuple):
    """One row of ``alert_audit``: an event the service emitted, by its id."""

    event_id: str
    patient_id: str
    type: str
    alert_id: str
    alert: str
    severity: str
    detail: str
    at: datetime


class AlertStates(Protocol):
    async def load(self, patients: set[str]) -> dict[str, PatientAlertState | None]:
        """Every patient asked for: its state, or None for one never seen."""

    async def save(self, states: dict[str, PatientAlertState]) -> None: ...

    def audit(self, row: Audited) -> None:
        """Kept once per event id."""


AUDIT = (
    "INSERT INTO alert_audit (event_id, patient_id, type, alert_id, alert, severity, detail, at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING"
)


class PgAlertStates(PgRepository):
    async def load(self, patients: set[str]) -> dict[str, PatientAlertState | None]:
        rows = await self.conn.fetch(
            "SELECT patient_id, state::text AS state FROM patient_state WHERE patient_id = ANY($1)",
            list(patients),
        )
        found: dict[str, PatientAlertState | None] = dict.fromkeys(patients)
        for r in rows:
            found[r["patient_id"]] = ALERT_STATE.load(r["state"])
        return found

    async def save(self, states: dict[str, PatientAlertState]) -> None:
        if not states:
            return
        await self.conn.execute(
            "INSERT INTO patient_state (patient_id, state, updated_at)"
            " SELECT p, s::jsonb, $3 FROM unnest($1::text[], $2::text[]) AS r(p, s)"
            " ON CONFLICT (patient_id) DO UPDATE SET state = EXCLUDED.state,"
            " updated_at = EXCLUDED.updated_at",
            list(states),
            [s.model_dump_json() for s in states.values()],
            self.uow.now,
        )

    def audit(self, row: Audited) -> None:
        self.uow.defer(AUDIT, tuple(row))


class MemoryAlertStates(MemoryRepository):
    """The same tables in memory; states kept as their stored JSON, loaded through
    the same upcasters as a row is (and never shared with the caller)."""

    def __init__(self, uow: UnitOfWork[Any]):
        super().__init__(uow)
        self.states = self.store.table("patient_state")
        self.audited = self.store.table("alert_audit")

    async def load(self, patients: set[str]) -> dict[str, PatientAlertState | None]:
        stored = self.states
        return {p: ALERT_STATE.load(stored[p]) if p in stored else None for p in patients}

    async def save(self, states: dict[str, PatientAlertState]) -> None:
        self.states.update({p: s.model_dump_json() for p, s in states.items()})

    def audit(self, row: Audited) -> None:
        self.audited.setdefault(row.event_id, row)
