"""Gateway service (DESIGN.md §8): an HTTP service that turns FHIR R4 into NTX
events through its outbox and answers CDS Hooks. It consumes no topic: its input
is HTTP (:mod:`services.gateway.http`); its schema holds the identity map, lone
lab results and the ids of events already sent (:mod:`services.gateway.store`).
It runs like every service (``ntx run``, ``ntx service gateway``), as its own
database role, with /livez /readyz /health /metrics."""

from __future__ import annotations

import logging

from services.gateway import http, lone_results
from services.gateway.clients import Client, load_clients
from services.gateway.repository import GatewayRepos
from services.gateway.store import MIGRATIONS, on_connection
from shared.envelope import Event
from shared.plumbing import PgPlumbing
from shared.runtime import Context, LoopSpec, ServiceSpec
from shared.unit_of_work import UnitOfWork

log = logging.getLogger("ntx.gateway")

_clients: dict[str, tuple[Client, ...]] = {}


def configured_clients() -> tuple[Client, ...]:
    """The clients (``NTX_GATEWAY_CLIENTS``, ``NTX_GATEWAY_CLIENTS_FILE``), read once
    per process; with none, every call is refused (401), said once in the log."""
    if "clients" not in _clients:
        _clients["clients"] = load_clients()
        if not _clients["clients"]:
            log.warning("no gateway clients configured (NTX_GATEWAY_CLIENTS): every call is 401")
    return _clients["clients"]


def use_clients(clients: tuple[Client, ...] | None) -> None:
    """Set the clients for this process (tests); None reads the environment again."""
    _clients.pop("clients", None)
    if clients is not None:
        _clients["clients"] = clients


def repositories(uow: UnitOfWork) -> GatewayRepos:
    assert isinstance(uow.store, PgPlumbing), "the gateway keeps its state in PostgreSQL"
    return on_connection(uow.store.conn, uow.now)


async def no_input(ctx: Context, events: list[Event]) -> None:
    """Never called: the gateway reads no topic."""


SPEC = ServiceSpec(
    name="gateway",
    topics=(),
    migrations=MIGRATIONS,
    handle=no_input,
    repositories=repositories,
    routes=http.add_routes,
    loops=(LoopSpec("lone-results", lone_results.report_lone_results, lone_results.poll_s),),
    check=load_clients,  # a bad client list stops `ntx run` before anything starts
)
