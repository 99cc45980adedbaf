"""``ntx deliveries list`` and ``ntx deliveries retry``: an operator sees what is
pending and what failed, and sends a failed delivery again; the dispatcher then
delivers it (an endpoint a 410 disabled is enabled again by the retry)."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.cli import main
from services.notifier.client import WebhookClient
from services.notifier.config import NotifierConfig
from services.notifier.dispatch import Dispatcher
from services.notifier.domain.delivery import plan, settle
from services.notifier.domain.outcome import AttemptResult
from services.notifier.domain.settings import DEFAULT_SETTINGS as S
from services.notifier.receiver import WebhookReceiver
from services.notifier.repository import Attempt
from services.notifier.store import MIGRATIONS, PostgresDeliveryRepository
from shared import db
from shared.clock import SimulatedClock
from shared.settings import get_settings
from tests.unit.notifier.helpers import T0, endpoint, new_secret, request

pytestmark = pytest.mark.infra


@pytest.fixture
def operator_env(infra, unique, monkeypatch):
    prefix = f"t{unique}_"
    monkeypatch.setenv("NTX_DATABASE_URL", infra.database_url)
    monkeypatch.setenv("NTX_SCHEMA_PREFIX", prefix)
    get_settings.cache_clear()
    yield prefix + "notifier"
    get_settings.cache_clear()


async def _call(argv: list[str]) -> int:
    """The CLI runs its own event loop: call it from a worker thread."""
    return await asyncio.to_thread(main, argv)


async def test_list_then_retry_a_delivery_a_410_failed(infra, operator_env, capsys):
    schema, secret = operator_env, new_secret()
    await db.migrate(infra.database_url, schema, MIGRATIONS)
    pool = await db.create_pool(infra.database_url, schema)
    clock = SimulatedClock(T0)
    repo = PostgresDeliveryRepository(pool, clock.now)
    try:
        async with WebhookReceiver(secret) as receiver:
            pager = endpoint("pager", url=receiver.url, secret=secret)
            gone, _ = plan(request(alert_id="a-1"), "n-gone", b"{}", [pager], frozenset(), T0)
            waiting, _ = plan(request(alert_id="a-2"), "n-wait", b"{}", [pager], frozenset(), T0)
            _, unaddressed = plan(
                request(audience="external"), "n-none", b"{}", [], frozenset(), T0
            )
            await repo.add(gone, [])
            [claimed] = await repo.claim(T0, T0 + S.claim_lease, {"pager": 1})
            settled = settle(claimed, AttemptResult(410), T0, S)
            await repo.record(settled, Attempt("n-gone", "pager", 1, T0, 410))
            await repo.disable_endpoint("pager", T0)
            await repo.add(waiting, unaddressed)

            assert await _call(["deliveries", "list"]) == 0
            listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            assert [(x["notification_id"], x["state"], x["last_status"]) for x in listed] == [
                ("n-gone", "endpoint_disabled", 410),
                ("n-wait", "pending", None),
                ("n-none", "failed", "no_endpoint"),
            ]

            assert await _call(["deliveries", "retry", "n-unknown"]) == 2
            assert "id: no failed delivery n-unknown" in capsys.readouterr().err
            assert await _call(["deliveries", "retry", "n-gone"]) == 0
            assert json.loads(capsys.readouterr().out) == {
                "retried": "n-gone",
                "endpoints": ["pager"],
            }
            assert await repo.disabled_endpoints() == frozenset()

            async with WebhookClient() as client:
                config = NotifierConfig(endpoints=(pager,))
                clock.set(T0 + S.claim_lease)
                await Dispatcher(repo, client, config, clock).run_once()
            assert {"n-gone", "n-wait"} <= receiver.delivered_ids()
            assert (await repo.get(("n-gone", "pager"))).state == "delivered"
            assert await _call(["deliveries", "retry", "n-gone"]) == 2  # delivered now
    finally:
        await pool.close()
