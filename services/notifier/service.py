"""Notifier worker (DESIGN.md §9): records each ``notification.requested`` as
deliveries in the consumer's transaction (inbox and outbox as every service), and a
supervised loop delivers what is due as signed webhooks, on the retry schedule,
publishing each outcome on ``ntx.deliveries.v1`` through the outbox."""

from __future__ import annotations

import logging

from services.notifier import acknowledging
from services.notifier.client import WebhookClient
from services.notifier.config import NotifierConfig, load_config
from services.notifier.dispatch import Dispatcher, accept
from services.notifier.store import MIGRATIONS, PostgresDeliveryRepository
from shared.envelope import Event
from shared.plumbing import PgPlumbing
from shared.runtime import Context, LoopSpec, Runtime, ServiceSpec
from shared.spec import Work
from shared.topics import NOTIFICATIONS
from shared.unit_of_work import UnitOfWork

log = logging.getLogger("ntx.notifier")

REQUESTED = "ntx.notification.requested.v1"

_configs: dict[str, NotifierConfig] = {}


def configured() -> NotifierConfig:
    """The endpoints (``NTX_NOTIFIER_CONFIG``, ``NTX_NOTIFIER_ENDPOINTS``), read once
    per process: the consumer and the delivery loop must plan with the same list."""
    if "config" not in _configs:
        _configs["config"] = load_config()
    return _configs["config"]


def use_config(config: NotifierConfig | None) -> None:
    """Set the endpoints for this process (tests, ``ntx demo``); None reads them
    again from the environment when next needed."""
    _configs.pop("config", None)
    if config is not None:
        _configs["config"] = config


def deliveries(uow: UnitOfWork) -> PostgresDeliveryRepository:
    """The deliveries of one unit of work, inside its transaction."""
    assert isinstance(uow.store, PgPlumbing), "the notifier stores deliveries in PostgreSQL"
    return PostgresDeliveryRepository(uow.store.conn, lambda: uow.now)


async def handle_batch(ctx: Context, events: list[Event]) -> None:
    await accept(ctx.repos, configured(), events, ctx.now)


async def deliver(runtime: Runtime) -> int:
    """Deliver until the service stops (the supervised loop restarts this after a
    failure); with no endpoint configured, say so once and deliver nowhere."""
    config = configured()
    if not config.endpoints:
        log.warning(
            "no notification endpoints configured (NTX_NOTIFIER_CONFIG): every request"
            " is recorded as failed with status no_endpoint"
        )
        await runtime.stopping.wait()
        return 0
    assert runtime.pool is not None
    repo = PostgresDeliveryRepository(runtime.pool, runtime.clock.now, runtime.wake_relay)
    log.info("delivering", extra={"endpoints": len(config.endpoints)})
    async with WebhookClient() as client:
        dispatcher = Dispatcher(repo, client, config, runtime.clock)
        await dispatcher.run(runtime.stopping, runtime.settings.timer_poll_s)
    return 0


SPEC = ServiceSpec(
    repositories=deliveries,
    name="notifier",
    topics=(NOTIFICATIONS,),
    migrations=MIGRATIONS,
    handle=handle_batch,
    handles=frozenset({REQUESTED}),
    loops=(LoopSpec("deliveries", deliver, lambda settings: settings.timer_poll_s),),
    work=(
        Work(
            "deliveries",
            "SELECT count(*) FROM {schema}.deliveries"
            " WHERE state = 'pending' AND next_attempt_at <= $1",
            "SELECT min(next_attempt_at) FROM {schema}.deliveries"
            " WHERE state = 'pending' AND next_attempt_at > $1",
        ),
    ),
    routes=acknowledging.add_routes,
    check=configured,
)
