"""A real local webhook receiver, for tests and for ``ntx demo``: it verifies every
signature with the ``standardwebhooks`` library, counts arrivals by ``webhook-id``
(so repeats show), and can be told to answer 500, 410, 429 with ``Retry-After``, or
to hang, for the next few requests.

It listens on loopback only. A request whose signature does not verify is answered
401 and counted in :attr:`WebhookReceiver.rejected`, never recorded as received.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

PATH = "/webhooks"


@dataclass(frozen=True)
class Answer:
    """How to answer one request: a status and headers, optionally after a hold."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold_s: float = 0.0


@dataclass(frozen=True)
class Received:
    """One verified arrival and how it was answered."""

    webhook_id: str
    event: dict[str, Any]
    headers: dict[str, str]
    status: int  # as answered; 0 when the sender went away before the answer (a hang)
    at: float  # time.monotonic() of arrival


class WebhookReceiver:
    def __init__(
        self,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        on_verified: Callable[[Received], None] | None = None,
    ):
        self._webhook = Webhook(secret)
        self._host, self._port = host, port
        self._on_verified = on_verified
        self._script: deque[Answer] = deque()
        self._by_id: defaultdict[str, deque[Answer]] = defaultdict(deque)
        self._default = Answer()
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.received: list[Received] = []
        self.rejected = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    # --- running ---------------------------------------------------------------

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, shutdown_timeout=1.0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._released.set()  # let held requests end
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}{PATH}"

    # --- telling it how to answer ------------------------------------------------

    def answer(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        webhook_id: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``);
        with ``webhook_id``, the next ``times`` requests carrying that id (a test
        sharing a topic with others scripts only its own notification)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        script = self._script if webhook_id is None else self._by_id[webhook_id]
        script.extend([Answer(status, headers)] * times)

    def hang(
        self, *, times: int = 1, seconds: float = 3600.0, webhook_id: str | None = None
    ) -> None:
        """Hold the next ``times`` requests (carrying ``webhook_id``, if given) without
        answering: the sender times out."""
        script = self._script if webhook_id is None else self._by_id[webhook_id]
        script.extend([Answer(200, hold_s=seconds)] * times)

    def slow(self, seconds: float, *, times: int = 1) -> None:
        """Answer 200 to the next ``times`` requests after ``seconds``."""
        self.hang(times=times, seconds=seconds)

    def always(self, status: int) -> None:
        """Answer ``status`` once the script is used up (default 200)."""
        self._default = Answer(status)

    # --- what it saw ------------------------------------------------------------------

    def count(self, webhook_id: str) -> int:
        return sum(1 for r in self.received if r.webhook_id == webhook_id)

    def delivered_ids(self) -> set[str]:
        """Ids answered with a 2xx at least once."""
        return {r.webhook_id for r in self.received if 200 <= r.status <= 299}

    def duplicates(self) -> dict[str, int]:
        """Ids that arrived more than once, with how many times."""
        counts = Counter(r.webhook_id for r in self.received)
        return {k: n for k, n in counts.items() if n > 1}

    async def wait_for(
        self, predicate: Callable[[WebhookReceiver], bool], timeout: float, poll: float = 0.01
    ) -> bool:
        """Wait until ``predicate(self)`` holds; False if it still does not after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self) and time.monotonic() < deadline:
            await asyncio.sleep(poll)
        return predicate(self)

    # --- handling ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            event = self._webhook.verify(body, headers)
        except WebhookVerificationError:
            self.rejected += 1
            return web.Response(status=401)
        answer = self._next_answer(headers["webhook-id"])
        arrival = Received(headers["webhook-id"], event, headers, answer.status, time.monotonic())
        if answer.hold_s:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), answer.hold_s)
            except asyncio.CancelledError:  # the sender gave up and closed the connection
                self._record(replace(arrival, status=0))
                raise
        self._record(arrival)
        return web.Response(status=answer.status, headers=answer.headers)

    def _next_answer(self, webhook_id: str) -> Answer:
        own = self._by_id.get(webhook_id)
        if own:
            return own.popleft()
        return self._script.popleft() if self._script else self._default

    def _record(self, arrival: Received) -> None:
        self.received.append(arrival)
        if self._on_verified is not None:
            self._on_verified(arrival)
