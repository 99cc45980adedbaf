"""faust-streaming app factory: one consumer group per service, raw bytes in (the
runtime validates them), one agent over the input topics, and the operator's HTTP
endpoints on loopback (``NTX_HTTP_BIND``): ``/livez``, ``/readyz``, ``/health`` and
``/metrics``, nothing else (faust's own pages are not served).

Broker session timeouts are short so a killed worker's partitions move in seconds
(see shared/settings.py). Agents
never let an exception escape (faust would ack and drop the message): the runtime
turns bad input into dead letters and waits out database outages.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import faust
from faust.web import drivers as web_drivers
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import metrics
from shared.faust_transport import app_class
from shared.ingress import Message
from shared.retrying import Abandoned, retry
from shared.runtime import Runtime

log = logging.getLogger("ntx.app")

#: Exit status of a worker that stopped holding a batch it could not handle (the
#: database away): like a crash, its offsets stay uncommitted and it is redelivered.
EXIT_ABANDONED = 75  # EX_TEMPFAIL


def make_app(runtime: Runtime) -> faust.App:
    settings = runtime.settings
    spec = runtime.spec
    app = _app_class(settings.kafka_fetch_max_wait_ms)(
        f"{spec.group}{_suffix(runtime)}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=True,
        web_host=settings.http_host,
        web_bind=settings.http_bind,
        web_port=settings.http_port or 6066,
        web_in_thread=False,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_commit_interval=settings.broker_commit_interval_s,
        broker_request_timeout=max(settings.broker_session_timeout_s * 2, 10.0),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # topics are created by `ntx migrate` (an administrator); a service's principal
        # may not create any (least privilege on the broker)
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=6,
        stream_wait_empty=True,
    )
    if spec.topics:
        _add_agent(app, runtime)
    else:  # the gateway consumes nothing (its input is HTTP): no consumer to start
        app.producer_only = True
    if spec.routes is not None:
        spec.routes(app, runtime)

    @app.service
    class RuntimeService(Service):  # noqa: F841 - registered by the decorator
        async def on_start(self) -> None:
            await runtime.start()

        async def on_stop(self) -> None:
            await runtime.stop()

    @app.page("/livez")
    async def livez(web, request):  # type: ignore[no-untyped-def]
        """The process runs and its event loop answers."""
        return web.json({"service": spec.name, "live": True})

    @app.page("/readyz")
    async def readyz(web, request):  # type: ignore[no-untyped-def]
        """Database reachable, partitions assigned (to a service that consumes), work
        getting done (DESIGN.md §10)."""
        status = await _health(app, runtime)
        status["ok"] = bool(status["ok"] and (status["partitions"] or not spec.topics))
        return web.json(status, status=200 if status["ok"] else 503)

    @app.page("/health")
    async def health(web, request):  # type: ignore[no-untyped-def]
        status = await _health(app, runtime)
        return web.json(status, status=200 if status["ok"] else 503)

    @app.page("/metrics")
    async def metrics_page(web, request):  # type: ignore[no-untyped-def]
        _record_lag(app, runtime)
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return app


def _app_class(fetch_max_wait_ms: int | None) -> type[faust.App]:
    """The app whose web server serves only the pages added here: faust's own
    (``/router/``, ``/table/``, ``/graph/``, its index and statistics) would show
    internals and answered a malformed ``/router/`` path with a traceback in the log."""

    class App(app_class(fetch_max_wait_ms)):  # type: ignore[misc]
        def _new_web(self) -> Any:
            class OwnPagesOnly(web_drivers.by_url(self.conf.web)):  # type: ignore[misc]
                default_blueprints: list = []
                production_blueprints: list = []
                debug_blueprints: list = []
                optional_blueprints: list = []

            return OwnPagesOnly(self)

    return App


def _add_agent(app: faust.App, runtime: Runtime) -> None:
    """One agent over all the service's input topics: a batch mixes them (order holds
    per partition, hence per patient), so each batch is one transaction."""
    names = [t.name for t in runtime.spec.topics]
    partitions = {t.partitions for t in runtime.spec.topics}
    assert len(partitions) == 1, "one agent's topics share a partition count"
    topic = app.topic(*names, key_type=bytes, value_type=bytes, partitions=partitions.pop())
    settings = runtime.settings

    async def agent(stream):  # type: ignore[no-untyped-def]
        # take_events acks a batch once this loop body is left, however it is left.
        async for events in stream.take_events(settings.batch_max, within=settings.batch_wait_s):
            batch = [
                Message(
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    e.key,
                    e.value,
                    _headers(e.message.headers),
                )
                for e in events
            ]
            try:
                await _until_handled(runtime, batch)
            except Abandoned:
                exit_unacknowledged(runtime, "told to stop while a batch was retried")

    app.agent(topic, name=runtime.spec.group)(agent)


def _headers(headers: Any) -> tuple[tuple[str, bytes], ...]:
    """faust hands headers over as a list of pairs or a mapping; the runtime takes pairs."""
    if not headers:
        return ()
    pairs = headers.items() if hasattr(headers, "items") else headers
    return tuple((str(k), v) for k, v in pairs)


async def _until_handled(runtime: Runtime, batch: list[Message]) -> None:
    """Bad input and handler failures become dead letters inside the runtime; anything
    else is the plumbing failing, so the batch is tried again rather than let out of
    the loop, where faust would acknowledge it unhandled."""
    await retry(
        runtime.process_batch,
        batch,
        errors=(Exception,),
        what="batch not handled",
        level=logging.ERROR,
        abandon_on=runtime.shutdown_requested,
    )


def exit_unacknowledged(runtime: Runtime, why: str) -> None:
    """Stop now, holding a batch that could not be handled (a shutdown came while it
    was retried, or the graceful stop took too long). Leaving the agent's loop would
    acknowledge it, so the process ends as a crash would: its offsets stay
    uncommitted, the batch is redelivered, and the inbox drops whatever of it was
    handled already."""
    log.warning(
        "stopping now; unacknowledged input will be redelivered",
        extra={"service": runtime.spec.name, "why": why},
    )
    logging.shutdown()
    os._exit(EXIT_ABANDONED)


async def _health(app: faust.App, runtime: Runtime) -> dict:  # type: ignore[type-arg]
    status = await runtime.health(_waiting(app, runtime))
    status["partitions"] = _assigned(app)
    return status


def _waiting(app: faust.App, runtime: Runtime) -> int:
    """Messages on this worker's partitions it has not handled yet, as far as its
    consumer knows the partitions' ends (0 when it cannot tell)."""
    return runtime.progress.waiting(_highwaters(app))


def _highwaters(app: faust.App) -> dict[tuple[str, int], int]:
    """The end offset of each assigned partition the consumer knows (none before it
    has started)."""
    try:
        ends = {
            (tp.topic, tp.partition): app.consumer.highwater(tp) for tp in app.consumer.assignment()
        }
    except Exception:  # the consumer is not started yet
        return {}
    return {tp: end for tp, end in ends.items() if end is not None}


def _record_lag(app: faust.App, runtime: Runtime) -> None:
    """``ntx_consumer_lag`` per assigned partition, as the scrape finds it. Before this
    worker handles a partition's first message its group's committed offset is the
    start (faust keeps it in ``_committed_offset``)."""
    committed = getattr(getattr(app, "_consumer", None), "_committed_offset", None) or {}
    known = {(tp.topic, tp.partition): o for tp, o in committed.items() if o is not None}
    metrics.CONSUMER_LAG.clear()
    for (topic, partition), lag in runtime.progress.lag(_highwaters(app), known).items():
        metrics.CONSUMER_LAG.labels(runtime.spec.name, topic, str(partition)).set(lag)


def _assigned(app: faust.App) -> int:
    """Partitions this worker consumes now (0 until its group has assigned them)."""
    try:
        return len(app.consumer.assignment())
    except Exception:  # the consumer is not started yet
        return 0


def _suffix(runtime: Runtime) -> str:
    return "" if runtime.schema == runtime.spec.name else f"-{runtime.schema}"


def _credentials(settings):  # type: ignore[no-untyped-def]
    """faust credentials for SASL/TLS brokers; None for PLAINTEXT."""
    proto = settings.kafka_security_protocol
    ssl_context = settings.kafka_client_options().get("ssl_context")
    if proto.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.sasl_password(),
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=ssl_context,
        )
    if proto == "SSL":
        return faust.SSLCredentials(ssl_context)
    return None
