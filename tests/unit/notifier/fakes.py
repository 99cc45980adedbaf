"""A scripted sender for the dispatcher's unit tests (no HTTP)."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable

from services.notifier.domain.delivery import Delivery
from services.notifier.domain.endpoints import Endpoint
from services.notifier.domain.outcome import AttemptResult

OK = AttemptResult(200)


class ScriptedSender:
    """Answers per endpoint from a script, then with ``default`` (or a function of
    the delivery); records every (endpoint, webhook-id) sent and the peak in flight."""

    def __init__(self, default: AttemptResult | Callable[[Delivery], AttemptResult] = OK):
        self.default = default
        self.scripts: dict[str, deque[AttemptResult]] = defaultdict(deque)
        self.sent: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None  # when set, sends wait for it
        self.in_flight = 0
        self.peak = 0

    def script(self, endpoint: str, *results: AttemptResult) -> None:
        self.scripts[endpoint].extend(results)

    async def send(self, endpoint: Endpoint, delivery: Delivery) -> AttemptResult:
        self.sent.append((endpoint.name, delivery.notification_id))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.scripts[endpoint.name]:
                return self.scripts[endpoint.name].popleft()
            return self.default(delivery) if callable(self.default) else self.default
        finally:
            self.in_flight -= 1
