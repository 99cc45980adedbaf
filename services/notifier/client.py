"""Sends one delivery attempt over HTTP with aiohttp: signed headers, a timeout per
attempt, and at most N requests in flight per endpoint.

Its answer is an :class:`AttemptResult`, the HTTP status or why there was none
(``timeout``, ``connection_error``); the state machine decides what that means.
Logs name the endpoint and the webhook id, never the URL or a secret.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import aiohttp

from services.notifier.domain.delivery import Delivery
from services.notifier.domain.endpoints import Endpoint
from services.notifier.domain.outcome import AttemptResult, parse_retry_after
from services.notifier.domain.settings import DEFAULT_SETTINGS, DeliverySettings
from services.notifier.message import webhook_headers
from shared.clock import Clock, SystemClock

log = logging.getLogger("ntx.notifier.client")
#: A receiver's answer is read up to this much (and ignored): enough to keep the
#: connection reusable, too little for a hostile receiver to matter.
MAX_ANSWER_BYTES = 64 * 1024


class Sender(Protocol):
    async def send(self, endpoint: Endpoint, delivery: Delivery) -> AttemptResult: ...


class WebhookClient:
    """One aiohttp session for every endpoint. ``wall`` stamps ``webhook-timestamp``
    and reads HTTP-date ``Retry-After``: real time even when deadlines run on a
    simulated clock, because receivers check it against theirs."""

    def __init__(self, settings: DeliverySettings = DEFAULT_SETTINGS, wall: Clock | None = None):
        self.settings = settings
        self.wall = wall or SystemClock()
        self._session: aiohttp.ClientSession | None = None
        self._bounds: dict[tuple[str, int], asyncio.Semaphore] = {}

    async def __aenter__(self) -> WebhookClient:
        # No pool-wide limit: the bound that matters is per endpoint, below.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def max_in_flight(self, endpoint: Endpoint) -> int:
        return endpoint.max_in_flight or self.settings.max_in_flight

    async def send(self, endpoint: Endpoint, delivery: Delivery) -> AttemptResult:
        """One attempt; waits for a free slot of the endpoint first."""
        async with self._bound(endpoint):
            started = time.monotonic()
            result = await self._post(endpoint, delivery)
        log.debug(
            "attempt",
            extra={
                "endpoint": endpoint.name,
                "webhook_id": delivery.notification_id,
                "status": result.status,
                "ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return result

    def _bound(self, endpoint: Endpoint) -> asyncio.Semaphore:
        key = (endpoint.name, self.max_in_flight(endpoint))
        if key not in self._bounds:
            self._bounds[key] = asyncio.Semaphore(key[1])
        return self._bounds[key]

    async def _post(self, endpoint: Endpoint, delivery: Delivery) -> AttemptResult:
        if self._session is None:
            raise RuntimeError("WebhookClient used outside 'async with'")
        headers = webhook_headers(
            delivery.notification_id, delivery.body, endpoint.secrets(), self.wall.now()
        )
        seconds = endpoint.timeout_s or self.settings.request_timeout.total_seconds()
        try:
            async with self._session.post(
                endpoint.url.get_secret_value(),
                data=delivery.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=seconds),
                allow_redirects=False,  # Standard Webhooks: a redirect is a failure
            ) as answer:
                await answer.content.read(MAX_ANSWER_BYTES)
                wait = parse_retry_after(answer.headers.get("Retry-After"), self.wall.now())
                return AttemptResult(answer.status, wait)
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too
            return AttemptResult("timeout")
        except (aiohttp.ClientError, OSError):
            return AttemptResult("connection_error")
