"""The one background loop every service runs its periodic work in: the outbox relay,
the timers, housekeeping and the scheduler's horizon. A step that fails is retried
after a backoff that doubles up to :data:`shared.retrying.LONGEST_DELAY_S`, with
jitter so workers that failed together (the database came back) do not retry in
lockstep; a loop failing for longer than ``stall_after_s`` shows on ``/readyz``
(:class:`shared.progress.Progress`).

A step returns how much work it did: 0 means idle, so the loop sleeps ``poll_s`` (or
until woken: the relay is woken when a batch commits outbox rows); more means there
may be more, so it goes again at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.progress import Progress
from shared.retrying import FIRST_DELAY_S, LONGEST_DELAY_S

log = logging.getLogger("ntx.runtime")

Step = Callable[[], Awaitable[int]]


@dataclass
class Loop:
    """``step`` run until ``stopping``; ``name`` is how failures are reported."""

    name: str
    step: Step
    poll_s: float
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self.wakeup.set()

    async def run(self, stopping: asyncio.Event, progress: Progress, service: str) -> None:
        backoff = self.poll_s
        while not stopping.is_set():
            self.wakeup.clear()
            try:
                busy = await self.step()
                backoff = self.poll_s
                progress.loop_ok(self.name)
            except Exception as exc:
                # The type only: messages of validation errors may quote input values.
                log.warning(
                    "loop retry",
                    extra={"service": service, "loop": self.name, "error": type(exc).__name__},
                )
                log.debug("loop failure detail", exc_info=True)
                progress.loop_failed(self.name)
                busy, backoff = 0, next_backoff(backoff)
            if not busy:
                await _sleep(self.wakeup, stopping, _jittered(backoff, self.poll_s))


def next_backoff(backoff: float) -> float:
    """After a failure: double, at least :data:`FIRST_DELAY_S`, at most the longest."""
    return min(max(backoff * 2, FIRST_DELAY_S), LONGEST_DELAY_S)


def _jittered(backoff: float, poll_s: float) -> float:
    """An idle poll as set; a backoff between half and all of itself ("equal jitter")."""
    return backoff if backoff <= poll_s else backoff * random.uniform(0.5, 1.0)


async def _sleep(wakeup: asyncio.Event, stopping: asyncio.Event, timeout: float) -> None:
    """Until ``timeout`` passes, the loop is woken, or the service stops."""
    waiters = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
