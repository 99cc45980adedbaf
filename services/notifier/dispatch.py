"""The notifier's handlers, without Kafka or a service runtime: accept a
``notification.requested`` event as deliveries, and attempt what is due.

The service will be a thin layer: its consumer calls :meth:`Dispatcher.accept` in
the batch's transaction, and a loop runs :meth:`Dispatcher.run`. A slot is claimed
only when it is free, so an attempt starts as soon as it is claimed and the claim's
lease only has to cover one request's timeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from datetime import datetime

from services.notifier.batched import Batched
from services.notifier.client import Sender
from services.notifier.config import NotifierConfig
from services.notifier.domain.delivery import (
    Delivery,
    Outcome,
    Settled,
    endpoint_gone,
    plan,
    settle,
)
from services.notifier.domain.endpoints import Endpoint
from services.notifier.domain.outcome import AttemptResult
from services.notifier.domain.retry import Draw
from services.notifier.domain.settings import DEFAULT_SETTINGS, DeliverySettings
from services.notifier.message import check_webhook_id, webhook_body
from services.notifier.repository import Attempt, DeliveryRepository
from shared import events as ev
from shared.clock import Clock
from shared.envelope import Event, InvalidEvent

log = logging.getLogger("ntx.notifier")
#: How often an idle dispatcher fails deliveries stranded on a removed or disabled
#: endpoint (seconds): not a clinical number, only how soon such a failure shows.
SWEEP_EVERY_S = 5.0


class Dispatcher:
    def __init__(
        self,
        repo: DeliveryRepository,
        sender: Sender,
        config: NotifierConfig,
        clock: Clock,
        settings: DeliverySettings = DEFAULT_SETTINGS,
        draw: Draw = random.uniform,
    ):
        self.repo, self.sender, self.config, self.clock = repo, sender, config, clock
        self.settings, self.draw = settings, draw
        self._in_flight: Counter[str] = Counter()
        self._attempting: set[tuple[str, str]] = set()
        self._slot_freed = asyncio.Event()
        #: Endpoints disabled as of the last claim (a 410 seen since then by another
        #: worker fails the next attempt's delivery at its claim instead).
        self._disabled: frozenset[str] = frozenset()
        self._records = Batched(repo.record_many)
        self._swept_at = 0.0

    # --- accepting requests ------------------------------------------------------------

    async def accept(self, event: Event) -> int:
        """Deliveries for one request; returns how many are new (0 for a repeat)."""
        return await accept(self.repo, self.config, [event], self.clock.now())

    # --- attempting ------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Attempt everything due that fits the free slots, and wait for the results;
        returns the number of attempts made."""
        await self.fail_removed_endpoints()
        started = await self._start_due()
        await asyncio.gather(*started)
        return len(started)

    async def run(self, stop: asyncio.Event, poll_s: float = 0.05) -> None:
        """Keep every endpoint's slots busy until ``stop``; then let attempts in
        flight finish (a stopped notifier records what it sent)."""
        await self.fail_removed_endpoints()
        running: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            started = await self._start_due_or_wait()
            running.update(started)
            for task in started:
                task.add_done_callback(running.discard)
                task.add_done_callback(_report_crash)
            if not started:
                await self._sweep_when_idle()
                self._slot_freed.clear()
                waits = [asyncio.ensure_future(e.wait()) for e in (stop, self._slot_freed)]
                await asyncio.wait(waits, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _sweep_when_idle(self) -> None:
        """:meth:`fail_removed_endpoints` now and then while nothing is due."""
        now = asyncio.get_running_loop().time()
        if now - self._swept_at >= SWEEP_EVERY_S:
            self._swept_at = now
            try:
                await self.fail_removed_endpoints()
            except Exception:
                log.exception("failing deliveries of removed endpoints failed; retrying")

    async def _start_due_or_wait(self) -> list[asyncio.Task[None]]:
        """As :meth:`_start_due`, but a failure to claim (the database away) is logged
        and retried at the next poll: it never stops the loop."""
        try:
            return await self._start_due()
        except Exception:
            log.exception("claiming due deliveries failed; retrying")
            return []

    async def fail_removed_endpoints(self) -> int:
        """Pending deliveries to endpoints no longer configured, or disabled (by
        another worker's 410 while one was in flight here), fail now: they would
        otherwise wait for ever, unreported."""
        configured = {e.name for e in self.config.endpoints}
        usable = configured - await self.repo.disabled_endpoints()
        removed = await self.repo.pending_endpoints() - usable
        return sum([await self._fail_pending(name) for name in sorted(removed)])

    async def _start_due(self) -> list[asyncio.Task[None]]:
        disabled = self._disabled = await self.repo.disabled_endpoints()
        slots = {
            e.name: free
            for e in self.config.endpoints
            if e.name not in disabled and (free := self._limit(e) - self._in_flight[e.name]) > 0
        }
        if not slots:
            return []
        now = self.clock.now()
        claimed = await self.repo.claim(now, now + self.settings.claim_lease, slots)
        tasks = []
        for delivery in claimed:
            endpoint = self.config.endpoint(delivery.endpoint)
            if endpoint is None or delivery.key in self._attempting:
                continue  # already being attempted here; that attempt records it
            self._in_flight[endpoint.name] += 1
            self._attempting.add(delivery.key)
            tasks.append(asyncio.create_task(self._attempt(endpoint, delivery)))
        return tasks

    async def _attempt(self, endpoint: Endpoint, delivery: Delivery) -> None:
        try:
            result = await self.sender.send(endpoint, delivery)
        except Exception:  # a defect must not stop delivery: the attempt counts as failed
            log.exception("attempt failed", extra={"endpoint": endpoint.name})
            result = AttemptResult("connection_error")
        finally:
            self._in_flight[endpoint.name] -= 1
            self._attempting.discard(delivery.key)
            self._slot_freed.set()
        now = self.clock.now()
        settled = settle(delivery, result, now, self.settings, self.draw)
        if settled.delivery.state == "pending" and endpoint.name in self._disabled:
            settled = endpoint_gone(settled.delivery, now)
        attempt = Attempt(
            delivery.notification_id,
            endpoint.name,
            settled.delivery.attempts,
            now,
            result.status,
            result.retry_after,
        )
        if await self._records.submit((settled, attempt)):
            self._log(settled)
        if settled.disable_endpoint:
            await self.repo.disable_endpoint(endpoint.name, now)
            self._disabled |= {endpoint.name}
            log.warning("endpoint disabled (410 Gone)", extra={"endpoint": endpoint.name})
            await self._fail_pending(endpoint.name)

    async def _fail_pending(self, name: str) -> int:
        """Fail the pending deliveries of endpoint ``name`` not being attempted here."""
        now, failed = self.clock.now(), 0
        for delivery in await self.repo.pending_for(name):
            if delivery.key not in self._attempting:
                settled = endpoint_gone(delivery, now)
                if await self.repo.record(settled, None):
                    self._log(settled)
                    failed += 1
        return failed

    def _limit(self, endpoint: Endpoint) -> int:
        return endpoint.max_in_flight or self.settings.max_in_flight

    def _log(self, settled: Settled) -> None:
        if settled.outcome is not None:
            level = logging.INFO if settled.delivery.state == "delivered" else logging.WARNING
            log.log(
                level, f"delivery {settled.delivery.state}", extra=_fields(settled.outcome.data)
            )


async def accept(
    repo: DeliveryRepository, config: NotifierConfig, events: list[Event], now: datetime
) -> int:
    """The deliveries the requests need, stored with the outcomes already known (no
    endpoint, a disabled endpoint) in one write; returns how many are new (0 for
    repeats). The service calls it inside the consumer's transaction, per batch."""
    disabled = await repo.disabled_endpoints()
    deliveries: list[Delivery] = []
    outcomes: list[Outcome] = []
    for event in events:
        if not isinstance(event.data, ev.NotificationRequested):
            raise InvalidEvent("type", f"{event.type} is not a notification request")
        planned, known = plan(
            event.data,
            check_webhook_id(event.envelope.id),
            webhook_body(event.envelope),
            list(config.endpoints),
            disabled,
            now,
        )
        deliveries += planned
        outcomes += known
    for outcome in outcomes:
        log.warning("not deliverable", extra=_fields(outcome.data))
    return await repo.add(deliveries, outcomes)


def _report_crash(task: asyncio.Task[None]) -> None:
    """An attempt that could not be recorded (the database away) stays leased and is
    attempted again when the lease ends; say so rather than lose the exception."""
    if not task.cancelled() and task.exception() is not None:
        log.error("attempt not recorded; retried after its lease", exc_info=task.exception())


def _fields(data: ev.NotificationOutcome) -> dict[str, object]:
    """Log fields of an outcome: ids and codes, as in the event."""
    return {
        "webhook_id": data.notification_id,
        "alert_id": data.alert_id,
        "audience": data.audience,
        "endpoint": data.endpoint or "-",
        "attempts": data.attempts,
        "status": data.status,
    }
