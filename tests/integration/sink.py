"""A service that only records what it received: the plumbing tests' subject. Its
one repository writes ``received`` rows through the unit of work, as a real service's
handlers write their tables."""

from __future__ import annotations

from pathlib import Path

from shared import db
from shared.envelope import Event
from shared.plumbing import PgRepository
from shared.runtime import ServiceSpec, each
from shared.topics import CLINICAL_EVENTS
from shared.unit_of_work import UnitOfWork

SINK_MIGRATIONS = Path(__file__).parent / "sink_migrations"


class Received(PgRepository):
    async def add(self, patient_id: str, event_id: str) -> None:
        await self.conn.execute(
            "INSERT INTO received (patient_id, event_id) VALUES ($1, $2)", patient_id, event_id
        )


async def record(uow: UnitOfWork[Received], event: Event) -> None:
    await uow.repos.add(event.patient_id, event.envelope.id)


def sink_with(handle=record) -> ServiceSpec:
    """The sink, with ``handle`` for each message."""
    return ServiceSpec(
        name="sink",
        topics=(CLINICAL_EVENTS,),
        migrations=SINK_MIGRATIONS,
        handle=each(handle),
        repositories=Received,
    )


SINK = sink_with()


async def received(infra, schema: str, patient: str) -> list[str]:
    """The ids the sink in ``schema`` recorded for ``patient``."""
    conn = await db.connect(infra.database_url, schema)
    try:
        rows = await conn.fetch("SELECT event_id FROM received WHERE patient_id = $1", patient)
        return [r["event_id"] for r in rows]
    finally:
        await conn.close()
