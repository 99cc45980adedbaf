"""A service's handlers on the in-memory unit of work, driven as the runtime drives
them (cosmicpython's ``test_handlers.py`` with a fake unit of work): a batch of
messages through the door, the deadlines due strictly before it
(:meth:`shared.deadlines.Deadlines.fire_before_input`, the worker's own code), the
inbox and the handler in one unit; due timers in a unit of their own. No broker,
no database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.clock import SystemClock
from shared.deadlines import Deadlines
from shared.envelope import Event, parse
from shared.inbox import Seen, digest
from shared.ingress import check
from shared.memory import MemoryUnits
from shared.settings import Settings
from shared.spec import ServiceSpec
from shared.unit_of_work import Repositories


@dataclass
class InMemoryService:
    spec: ServiceSpec
    repositories: Repositories
    settings: Settings = field(default_factory=Settings)

    def __post_init__(self) -> None:
        self.units = MemoryUnits(self.spec.source, self.repositories, self.settings)
        # only its before-input path runs here: it needs the unit of work alone
        self.deadlines = Deadlines(self.units, self.spec.on_timers, SystemClock(), lambda: None)  # type: ignore[arg-type]

    @property
    def store(self):
        return self.units.store

    def table(self, name: str) -> dict[Any, Any]:
        return self.store.table(name)

    async def handle(
        self, now: datetime, *envelopes: dict[str, Any], door: bool = True
    ) -> list[str]:
        """One batch at ``now``: each message checked at the door (unless ``door`` is
        false: what only the handler refuses), claimed in the inbox, and the new ones
        handed to the handler together; their outcomes."""
        raws = [json.dumps(e).encode() for e in envelopes]
        events = [check(raw, now) if door else parse(raw) for raw in raws]
        async with self.units.begin(now) as uow:
            patients = sorted({e.patient_id for e in events})
            await uow.lock_patients(patients)
            await self.deadlines.fire_before_input(uow, patients)
            claims = await uow.claim_inbox(
                [
                    (e.envelope.source, e.envelope.id, digest(r))
                    for e, r in zip(events, raws, strict=True)
                ]
            )
            todo: list[Event] = [
                e
                for e, c in zip(events, claims, strict=True)
                if c is Seen.NEW and self.spec.acts_on(e.type)
            ]
            if todo:
                await self.spec.handle(uow, todo)
        return [c.value for c in claims]

    async def fire(self, now: datetime) -> int:
        """Every timer due at ``now``, in one unit (as one round of the timer loop)."""
        assert self.spec.on_timers is not None
        async with self.units.begin(now) as uow:
            waiting, _ = await uow.store.due_patients(now, self.settings.timer_batch)
            due = await uow.claim_due_timers(sorted(await uow.try_lock_patients(waiting)))
            if due:
                await self.spec.on_timers(uow, due)
        return len(due)

    async def published(self) -> list[dict[str, Any]]:
        """The events waiting in the outbox, in order, stamped sent (each read once)."""
        rows = await self.store.unsent(10_000)
        await self.store.mark_sent([r.id for r in rows])
        return [json.loads(r.value) for r in rows]

    def timers(self, patient_id: str) -> dict[str, datetime]:
        timers = self.store.tables.timers.values()
        return {t.key: t.due_at for t in timers if t.patient_id == patient_id}
