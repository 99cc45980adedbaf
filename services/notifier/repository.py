"""Where deliveries, their attempts and next-attempt times live: a protocol, and the
in-memory implementation (the PostgreSQL one is :mod:`services.notifier.store`; both
pass the same contract tests, ``tests/unit/notifier/test_repository.py``).

Claiming is a lease: a claimed delivery's ``next_attempt_at`` moves to the lease's
end, so no other worker takes it meanwhile, and a worker killed mid-request leaves
it to be claimed again when the lease ends: at-least-once, same ``webhook-id``.
Recording is conditional on the delivery being as claimed (still pending, same
number of attempts), so a late or second writer never overwrites a newer state
and never publishes a second outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from services.notifier.domain.delivery import Delivery, Outcome, Settled
from services.notifier.domain.outcome import AttemptStatus

Key = tuple[str, str]  # (notification_id, endpoint)


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt of a delivery, kept for operators."""

    notification_id: str
    endpoint: str
    number: int
    at: datetime
    status: AttemptStatus
    retry_after: timedelta | None = None


class DeliveryRepository(Protocol):
    async def add(self, deliveries: Sequence[Delivery], outcomes: Sequence[Outcome]) -> int:
        """Store new deliveries and the outcomes already known at acceptance, together.
        A delivery already stored is left as it is (a repeated request), and so is its
        outcome; returns how many deliveries were new."""
        ...

    async def claim(
        self, now: datetime, lease_until: datetime, slots: Mapping[str, int]
    ) -> list[Delivery]:
        """Pending deliveries due at ``now``, earliest first, at most ``slots[name]`` for
        each endpoint named there (none for others), each leased until ``lease_until``."""
        ...

    async def record(self, settled: Settled, attempt: Attempt | None) -> bool:
        """Store ``settled`` with its attempt and outcome, together, if the stored
        delivery is still pending with ``settled``'s attempts before this one;
        False (and nothing stored) otherwise."""
        ...

    async def record_many(self, recorded: Sequence[tuple[Settled, Attempt | None]]) -> list[bool]:
        """:meth:`record` for each, in order, in one write."""
        ...

    async def get(self, key: Key) -> Delivery | None: ...

    async def pending_for(self, endpoint: str) -> list[Delivery]: ...

    async def pending_endpoints(self) -> set[str]: ...

    async def for_alert(self, alert_id: str) -> list[Delivery]: ...

    async def attempts(self, key: Key) -> list[Attempt]: ...

    async def disable_endpoint(self, name: str, at: datetime) -> None: ...

    async def disabled_endpoints(self) -> frozenset[str]: ...

    async def published_outcomes(self) -> list[Outcome]:
        """The outcome events stored for publishing, in order."""
        ...


class InMemoryDeliveryRepository:
    """For unit tests and the demo; ``published`` holds the outcome events in order."""

    def __init__(self) -> None:
        self.deliveries: dict[Key, Delivery] = {}
        self.attempt_log: dict[Key, list[Attempt]] = {}
        self.disabled: dict[str, datetime] = {}
        self.published: list[Outcome] = []
        self._published_ids: set[str] = set()

    async def add(self, deliveries: Sequence[Delivery], outcomes: Sequence[Outcome]) -> int:
        new = [d for d in deliveries if d.key not in self.deliveries]
        fresh_keys = {d.key for d in new}
        for d in new:
            self.deliveries[d.key] = d
        for o in outcomes:
            key = (o.data.notification_id, o.data.endpoint or "")
            if o.data.endpoint is None or key in fresh_keys:
                self._publish(o)
        return len(new)

    async def claim(
        self, now: datetime, lease_until: datetime, slots: Mapping[str, int]
    ) -> list[Delivery]:
        due = sorted(
            (
                d
                for d in self.deliveries.values()
                if d.state == "pending"
                and d.endpoint in slots
                and d.next_attempt_at is not None
                and d.next_attempt_at <= now
            ),
            key=lambda d: (d.next_attempt_at, d.accepted_at, d.key),
        )
        taken: list[Delivery] = []
        left = dict(slots)
        for d in due:
            if left[d.endpoint] > 0:
                left[d.endpoint] -= 1
                leased = replace(d, next_attempt_at=lease_until)
                self.deliveries[d.key] = leased
                taken.append(leased)
        return taken

    async def record(self, settled: Settled, attempt: Attempt | None) -> bool:
        new = settled.delivery
        stored = self.deliveries.get(new.key)
        before = new.attempts - (1 if attempt is not None else 0)
        if stored is None or stored.state != "pending" or stored.attempts != before:
            return False
        self.deliveries[new.key] = new
        if attempt is not None:
            self.attempt_log.setdefault(new.key, []).append(attempt)
        if settled.outcome is not None:
            self._publish(settled.outcome)
        return True

    async def record_many(self, recorded: Sequence[tuple[Settled, Attempt | None]]) -> list[bool]:
        return [await self.record(settled, attempt) for settled, attempt in recorded]

    async def get(self, key: Key) -> Delivery | None:
        return self.deliveries.get(key)

    async def pending_for(self, endpoint: str) -> list[Delivery]:
        return [
            d for d in self.deliveries.values() if d.endpoint == endpoint and d.state == "pending"
        ]

    async def pending_endpoints(self) -> set[str]:
        return {d.endpoint for d in self.deliveries.values() if d.state == "pending"}

    async def for_alert(self, alert_id: str) -> list[Delivery]:
        return [d for d in self.deliveries.values() if d.alert_id == alert_id]

    async def attempts(self, key: Key) -> list[Attempt]:
        return list(self.attempt_log.get(key, []))

    async def disable_endpoint(self, name: str, at: datetime) -> None:
        self.disabled.setdefault(name, at)

    async def disabled_endpoints(self) -> frozenset[str]:
        return frozenset(self.disabled)

    async def published_outcomes(self) -> list[Outcome]:
        return list(self.published)

    def _publish(self, outcome: Outcome) -> None:
        if outcome.id not in self._published_ids:
            self._published_ids.add(outcome.id)
            self.published.append(outcome)
