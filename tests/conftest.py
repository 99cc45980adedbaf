"""Session-wide test fixtures: the broker and database (DESIGN.md §2 and §7).

``infra`` (session scope) yields an :class:`Infra`. Where each part comes from:

1. ``NTX_KAFKA_BOOTSTRAP`` / ``NTX_DATABASE_URL`` set: used as they are;
2. else ``NTX_TEST_INFRA=containers``: testcontainers (``apache/kafka`` in KRaft
   mode, ``postgres:18``), for when a Docker daemon answers;
3. else the embedded stack of :mod:`shared.infra` (Apache Kafka from the jars
   ``make install`` fetched, or Tansu where no JDK is found; PostgreSQL from its
   wheel) in a temporary directory, kept (and named in the summary) when a test failed.

Every topic of ``shared.topics.ALL_TOPICS`` is created once per session. Tests that
use ``infra`` get the ``infra`` marker, so ``pytest -m "not infra"`` runs without it.
``infra.broker`` / ``infra.postgres`` are the embedded processes (pause, restart,
kill for fault tests) or None when the part runs elsewhere: such tests skip then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.infra import (
    EmbeddedBroker,
    EmbeddedPostgres,
    EmbeddedStack,
    TopicOptions,
    create_topics,
    free_port,
    kafka_ping,
)
from shared.kafka_broker import KafkaCluster
from shared.settings import get_settings

KAFKA_IMAGE = "apache/kafka:4.4.0"  # the version deploy/kafka/pom.xml pins
POSTGRES_IMAGE = "postgres:18"

_KEPT_DIR = pytest.StashKey[Path]()


@dataclass(frozen=True)
class Infra:
    bootstrap: str
    database_url: str
    broker: KafkaCluster | EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None
    #: replication for create_topics: 1 on an embedded single node, else the settings
    topic_options: TopicOptions = field(default_factory=TopicOptions)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "infra" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.infra)


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[Infra]:
    with contextlib.ExitStack() as stack:
        if os.environ.get("NTX_TEST_INFRA") == "containers":
            found = stack.enter_context(_containers())
        else:
            found = stack.enter_context(_embedded(request))
        run_async(create_topics(found.bootstrap, **found.topic_options))
        yield found


@pytest.fixture
def unique() -> str:
    """A short lowercase suffix for topic, group and schema names of one test."""
    return uuid.uuid4().hex[:10]


def run_async(coro):  # type: ignore[no-untyped-def]
    """Run ``coro`` to completion on a private loop in a worker thread, so sync fixtures
    never touch the event loop pytest-asyncio keeps for the session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextlib.contextmanager
def _embedded(request: pytest.FixtureRequest) -> Iterator[Infra]:
    # Under /tmp rather than pytest's basetemp: another pytest session resets that
    # tree to mode 0700, which would lock the PostgreSQL system user out of its data.
    data_dir = Path(tempfile.mkdtemp(prefix="ntx-test-infra-"))
    try:
        with EmbeddedStack(data_dir) as stack, _environment(stack.settings_env()):
            yield Infra(
                stack.bootstrap,
                stack.database_url,
                stack.broker,
                stack.postgres,
                stack.topic_options(),
            )
    finally:
        if request.session.testsfailed:
            request.config.stash[_KEPT_DIR] = data_dir
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The settings the embedded broker needs (its replication; no idempotence on the
    Tansu fallback) for every Settings this session makes, then the old environment."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@contextlib.contextmanager
def _containers() -> Iterator[Infra]:
    """testcontainers for whatever ``NTX_KAFKA_BOOTSTRAP`` / ``NTX_DATABASE_URL`` leave open."""
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("NTX_KAFKA_BOOTSTRAP") or stack.enter_context(_kafka_container())
        database_url = os.environ.get("NTX_DATABASE_URL")
        if not database_url:
            from testcontainers.community.postgres import PostgresContainer

            pg = stack.enter_context(PostgresContainer(POSTGRES_IMAGE, driver=None))
            database_url = pg.get_connection_url()
        yield Infra(bootstrap, database_url)


@contextlib.contextmanager
def _kafka_container() -> Iterator[str]:
    """``apache/kafka`` as a single KRaft node. testcontainers' ``KafkaContainer`` drives
    the Confluent image's start scripts, which this image lacks, so a generic container
    is configured here; it advertises the host port it is published on."""
    from testcontainers.core.container import DockerContainer

    host = os.environ.get("TC_HOST", "127.0.0.1")
    port = free_port()
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_envs(
            CLUSTER_ID="MkU3OEVBNTcwNTJENDM2Qk",
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS="PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://{host}:{port}",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_NUM_PARTITIONS="6",
        )
    )
    with container:
        deadline = time.monotonic() + 90
        while True:
            try:
                kafka_ping(host, port)
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield f"{host}:{port}"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    kept = config.stash.get(_KEPT_DIR, None)
    if kept is not None:
        terminalreporter.write_line(f"embedded broker/database logs kept in {kept}")
