"""The notifier service as its tests run it: its runtime on its own schema, fed from
the real broker as a worker would be, with one configured endpoint, a simulated clock
and a sender of notification requests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from services.notifier import service
from services.notifier.config import NotifierConfig
from services.notifier.domain.endpoints import Endpoint
from services.notifier.service import SPEC
from shared import db
from shared.envelope import build
from shared.topics import NOTIFICATIONS
from tests.integration.harness import Harness, eventually, produce
from tests.unit.notifier.helpers import request

Send = Callable[[dict], Awaitable[None]]


def requested(patient: str, alert_id: str, at: datetime) -> dict:
    data = request(patient_id=patient, alert_id=alert_id)
    return build("ntx.notification.requested.v1", data, source="ntx/alerts", time=at)


@contextlib.asynccontextmanager
async def notifier_serving(
    infra, unique: str, endpoint: Endpoint, start: datetime
) -> AsyncIterator[tuple[Harness, Send]]:  # type: ignore[no-untyped-def]
    service.use_config(NotifierConfig(endpoints=(endpoint,)))
    try:
        async with Harness(SPEC, infra, f"notifier_{unique}", timer_poll_s=0.02) as harness:
            harness.clock.set(start)

            async def send(event: dict) -> None:
                key = event["subject"].encode()
                await produce(infra.bootstrap, NOTIFICATIONS.name, key, json.dumps(event).encode())

            yield harness, send
    finally:
        service.use_config(None)


async def attempts_recorded(infra, unique: str, notification_id: str, n: int) -> None:  # type: ignore[no-untyped-def]
    """Wait until the notifier has recorded ``n`` attempts of the delivery: the
    receiver sees an attempt before the notifier settles it on the clock it then
    reads, so the clock moves on only after that."""
    conn = await db.connect(infra.database_url, f"notifier_{unique}")
    try:
        count = "SELECT count(*) FROM delivery_attempts WHERE notification_id = $1"
        assert await eventually(lambda: _at_least(conn, count, notification_id, n), timeout=30)
    finally:
        await conn.close()


async def _at_least(conn, sql: str, notification_id: str, n: int) -> bool:  # type: ignore[no-untyped-def]
    return await conn.fetchval(sql, notification_id) >= n
