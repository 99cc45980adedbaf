"""Firing a service's durable timers (:mod:`shared.timers`): in rounds of their own
(the timer loop), and before a batch's input for that batch's patients, so whether
the loop got there first never changes the outcome.

A round reads the clock once: every patient fired in it sees the same ``now``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared import db, timers
from shared.clock import Clock
from shared.spec import TimersHandler
from shared.unit_of_work import UnitOfWork, Units

log = logging.getLogger("ntx.runtime")


class Deadlines:
    def __init__(
        self,
        units: Units,
        on_timers: TimersHandler | None,
        clock: Clock,
        fired: Callable[[], None],
    ):
        self.units = units
        self.on_timers = on_timers
        self.clock = clock
        #: Called after timers fired and committed (their events wait in the outbox).
        self.fired = fired

    async def fire_due(self) -> int:
        """Fire every timer due now, a batch of patients per transaction; returns how
        many fired. Each patient's lock is taken before its timers are claimed, as a
        message batch does, so a deadline and an input for one patient never interleave;
        a patient busy in another transaction waits for the next round."""
        if self.on_timers is None:
            return 0
        now, fired, batch = self.clock.now(), 0, self.units.settings.timer_batch
        while True:
            async with self.units.pool.acquire() as conn:  # a cheap look, outside a transaction
                waiting, more = await timers.due_patients(conn, now, batch)
            if not waiting:
                return fired
            async with self.units.begin(now) as uow:
                free = await uow.try_lock_patients(waiting)
                due = await self._fire(uow, sorted(free))
            fired += len(due)
            if due:
                self.fired()
            if not more or not free:
                return fired

    async def fire_before_input(self, uow: UnitOfWork, patients: list[str]) -> None:
        """Before a batch's input, the deadlines of its patients (whose locks ``uow``
        holds) that are already due fire, as they would have on time. A deadline at
        exactly this instant waits: the input is on time
        (:func:`shared.timers.fires_before_input`). A failing timer (a defect) rolls
        back alone and is left to the timer loop; the input goes on."""
        if self.on_timers is None or not patients:
            return
        try:
            async with uow.savepoint() as inner:
                due = await self._fire(inner, patients, before_input=True)
        except db.TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            log.warning("timers not fired before input", extra={"error": type(exc).__name__})
        else:
            if due:
                self.fired()

    async def _fire(
        self, uow: UnitOfWork, patients: list[str], *, before_input: bool = False
    ) -> list[timers.TimerRow]:
        assert self.on_timers is not None
        due = await uow.claim_due_timers(patients, before_input=before_input)
        if due:
            await self.on_timers(uow, due)
        return due
