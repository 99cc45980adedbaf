"""The scheduler's tables behind its unit of work: each patient's plan (its state and
how far its horizon is materialised) and the due items of that horizon, emitted
once. One PostgreSQL implementation, one in memory for handler tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import asyncpg

from services.scheduler.domain import PlanState
from services.scheduler.domain.state import STORED as PLAN_STATE
from shared.housekeeping import delete_in_chunks
from shared.memory import MemoryRepository
from shared.plumbing import PgRepository
from shared.unit_of_work import UnitOfWork


class Plan(NamedTuple):
    state: PlanState
    #: Items are materialised up to here.
    horizon_until: datetime


class Item(NamedTuple):
    """A due item: ``data`` is its event's data as validated JSON."""

    patient_id: str
    key: str
    type: str
    due_at: datetime
    data: str


class Plans(Protocol):
    async def load(self, patients: set[str]) -> dict[str, Plan]:
        """The patients' plans, locked for this unit (patients without one left out)."""

    async def save(self, plans: dict[str, Plan]) -> None:
        """Write these plans, active."""

    async def drop_unemitted(self, patients: list[str], whole: list[str], since: datetime) -> None:
        """Drop items not yet emitted: all of ``whole``'s, and the other patients'
        from ``since`` on."""

    async def add_items(self, items: list[Item]) -> None:
        """Add items; one already there (same patient and key) is kept."""

    async def claim_due(self, now: datetime, limit: int, late_after: timedelta) -> list[Item]:
        """Stamp the first ``limit`` items due by ``now`` emitted (late if more than
        ``late_after`` overdue), oldest first, and return them; others' workers skip
        them."""

    async def running_short(self, before: datetime, limit: int) -> dict[str, Plan]:
        """Active plans whose horizon ends before ``before``, soonest first."""

    async def extend(self, horizons: list[tuple[str, datetime, bool]]) -> None:
        """``(patient, horizon_until, active)`` for each plan."""


class PgPlans(PgRepository):
    async def load(self, patients: set[str]) -> dict[str, Plan]:
        rows = await self.conn.fetch(
            "SELECT patient_id, state::text AS state, horizon_until FROM plans"
            " WHERE patient_id = ANY($1) ORDER BY patient_id FOR UPDATE",
            list(patients),
        )
        return {
            r["patient_id"]: Plan(PLAN_STATE.load(r["state"]), r["horizon_until"]) for r in rows
        }

    async def save(self, plans: dict[str, Plan]) -> None:
        await self.conn.execute(
            "INSERT INTO plans (patient_id, state, active, horizon_until, updated_at)"
            " SELECT p, s::jsonb, true, h, $4"
            " FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS r(p, s, h)"
            " ON CONFLICT (patient_id) DO UPDATE SET state = EXCLUDED.state, active = true,"
            " horizon_until = EXCLUDED.horizon_until, updated_at = EXCLUDED.updated_at",
            list(plans),
            [p.state.model_dump_json() for p in plans.values()],
            [p.horizon_until for p in plans.values()],
            self.uow.now,
        )

    async def drop_unemitted(self, patients: list[str], whole: list[str], since: datetime) -> None:
        await self.conn.execute(
            "DELETE FROM due_items WHERE patient_id = ANY($1) AND emitted_at IS NULL"
            " AND (patient_id = ANY($2) OR due_at >= $3)",
            patients,
            whole,
            since,
        )

    async def add_items(self, items: list[Item]) -> None:
        if items:
            await self.conn.execute(
                "INSERT INTO due_items (patient_id, key, type, due_at, data)"
                " SELECT p, k, t, d, j::jsonb"
                " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])"
                " AS r(p, k, t, d, j) ON CONFLICT (patient_id, key) DO NOTHING",
                *map(list, zip(*items, strict=True)),
            )

    async def claim_due(self, now: datetime, limit: int, late_after: timedelta) -> list[Item]:
        rows = await self.conn.fetch(
            "UPDATE due_items d SET emitted_at = $1, late = $1 - d.due_at > $3"
            " FROM (SELECT patient_id, key FROM due_items WHERE emitted_at IS NULL AND due_at <= $1"
            "       ORDER BY due_at, patient_id, key LIMIT $2 FOR UPDATE SKIP LOCKED) c"
            " WHERE d.patient_id = c.patient_id AND d.key = c.key"
            " RETURNING d.patient_id, d.key, d.type, d.due_at, d.data::text",
            now,
            limit,
            late_after,
        )
        return sorted((Item(*r) for r in rows), key=_due_order)

    async def running_short(self, before: datetime, limit: int) -> dict[str, Plan]:
        rows = await self.conn.fetch(
            "SELECT patient_id, state::text AS state, horizon_until FROM plans"
            " WHERE active AND horizon_until < $1"
            " ORDER BY horizon_until LIMIT $2 FOR UPDATE SKIP LOCKED",
            before,
            limit,
        )
        return {
            r["patient_id"]: Plan(PLAN_STATE.load(r["state"]), r["horizon_until"]) for r in rows
        }

    async def extend(self, horizons: list[tuple[str, datetime, bool]]) -> None:
        if horizons:
            await self.conn.execute(
                "UPDATE plans p SET horizon_until = r.h, active = r.a"
                " FROM unnest($1::text[], $2::timestamptz[], $3::bool[]) AS r(id, h, a)"
                " WHERE p.patient_id = r.id",
                *map(list, zip(*horizons, strict=True)),
            )


async def any_item_due(conn: asyncpg.Connection, now: datetime) -> bool:
    """A cheap look outside a transaction, so an idle emitter costs one round trip."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM due_items WHERE emitted_at IS NULL AND due_at <= $1)",
            now,
        )
    )


async def prune_emitted_items(conn: asyncpg.Connection, before: datetime) -> None:
    """Housekeeping: items emitted before ``before`` go, in small chunks."""
    await delete_in_chunks(conn, "due_items", "emitted_at < $1", before)


def _due_order(item: Item) -> tuple[datetime, str, str]:
    return item.due_at, item.patient_id, item.key


class MemoryPlans(MemoryRepository):
    """The same tables in memory: plans as ``(state JSON, horizon_until, active)``
    (loaded through the same upcasters), due items as ``(item, emitted_at, late)``."""

    def __init__(self, uow: UnitOfWork[Any]):
        super().__init__(uow)
        self.plans = self.store.table("plans")
        self.items = self.store.table("due_items")

    def _plan(self, patient_id: str) -> Plan:
        state, until, _ = self.plans[patient_id]
        return Plan(PLAN_STATE.load(state), until)

    async def load(self, patients: set[str]) -> dict[str, Plan]:
        return {p: self._plan(p) for p in sorted(patients) if p in self.plans}

    async def save(self, plans: dict[str, Plan]) -> None:
        for pid, plan in plans.items():
            self.plans[pid] = (plan.state.model_dump_json(), plan.horizon_until, True)

    async def drop_unemitted(self, patients: list[str], whole: list[str], since: datetime) -> None:
        for key, (item, emitted_at, _) in list(self.items.items()):
            dropped = item.patient_id in whole or item.due_at >= since
            if item.patient_id in patients and emitted_at is None and dropped:
                del self.items[key]

    async def add_items(self, items: list[Item]) -> None:
        for item in items:
            self.items.setdefault((item.patient_id, item.key), (item, None, False))

    async def claim_due(self, now: datetime, limit: int, late_after: timedelta) -> list[Item]:
        due = [
            i for i, emitted_at, _ in self.items.values() if emitted_at is None and i.due_at <= now
        ]
        claimed = sorted(due, key=_due_order)[:limit]
        for item in claimed:
            self.items[(item.patient_id, item.key)] = (item, now, now - item.due_at > late_after)
        return claimed

    async def running_short(self, before: datetime, limit: int) -> dict[str, Plan]:
        short = [
            (until, p) for p, (_, until, active) in self.plans.items() if active and until < before
        ]
        return {p: self._plan(p) for _, p in sorted(short)[:limit]}

    async def extend(self, horizons: list[tuple[str, datetime, bool]]) -> None:
        for pid, until, active in horizons:
            self.plans[pid] = (self.plans[pid][0], until, active)
