"""Least privilege on the broker (DESIGN.md §5): Apache Kafka with SASL/SCRAM-SHA-512
over TLS (certificates made here) and ACLs from the topic registry. Each service's
principal reads only its input topics and its group, writes only its outputs; the
intake service runs as its principal end to end."""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from services.demo import intake
from services.runner import ServiceProcesses, service_env
from shared.infra import create_topics
from shared.kafka_broker import KafkaCluster
from shared.kafka_node import unavailable_reason
from shared.kafka_security import ADMIN, SERVICES, BrokerSecurity, make_certificates, principal
from shared.outbox import encode
from shared.topics import ALERTS, CLINICAL_EVENTS, INTAKE_DECISIONS, INTAKE_REQUESTS

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def secure():
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"SASL/SCRAM and ACLs need Apache Kafka: {reason}")
    run_dir = Path(tempfile.mkdtemp(prefix="ntx-test-secure-"))
    users = [ADMIN, *(principal(s) for s in SERVICES)]
    security = BrokerSecurity(
        passwords={u: secrets.token_urlsafe(16) for u in users},
        tls=make_certificates(run_dir / "tls"),
    )
    with KafkaCluster(run_dir / "kafka", security=security) as kafka:
        asyncio.run(create_topics(kafka.bootstrap, **admin(kafka), **single_node()))
        kafka.grant_service_acls()
        yield kafka


def single_node() -> dict[str, int]:
    return {"replication_factor": 1, "min_insync_replicas": 1}


def admin(kafka: KafkaCluster) -> dict:
    assert kafka.security is not None
    return kafka.security.client_options(ADMIN)


def as_service(kafka: KafkaCluster, service: str) -> dict:
    assert kafka.security is not None
    return kafka.security.client_options(principal(service))


async def send(
    kafka: KafkaCluster, options: dict, topic: str, value: bytes = b"{}", key: str = "pt-sec"
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", **options)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def read_one(kafka: KafkaCluster, options: dict, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        **options,
    )
    await consumer.start()
    try:
        await consumer.getone()
    finally:
        await consumer.stop()


def test_listener_speaks_sasl_ssl_with_scram(secure):
    assert secure.security is not None
    assert secure.security.client_protocol == "SASL_SSL"
    props = (secure.run_dir / "node-1" / "server.properties").read_text()
    assert "CLIENT:SASL_SSL" in props and "sasl.enabled.mechanisms=SCRAM-SHA-512" in props
    assert "allow.everyone.if.no.acl.found=false" in props


async def test_intake_principal_is_refused_a_write_to_the_alerts_topic(secure):
    with pytest.raises(TopicAuthorizationFailedError):
        await send(secure, as_service(secure, "intake"), ALERTS.name)


async def test_each_principal_writes_its_outputs_and_reads_its_inputs(secure):
    await send(secure, as_service(secure, "intake"), INTAKE_DECISIONS.name)
    await send(secure, admin(secure), INTAKE_REQUESTS.name)
    await asyncio.wait_for(
        read_one(secure, as_service(secure, "intake"), INTAKE_REQUESTS.name, "ntx-intake"), 30
    )
    await send(secure, as_service(secure, "alerts"), ALERTS.name)


async def test_intake_principal_reads_no_other_topic_and_no_other_group(secure):
    await send(secure, admin(secure), CLINICAL_EVENTS.name)
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(
            read_one(secure, as_service(secure, "intake"), CLINICAL_EVENTS.name, "ntx-intake"),
            30,
        )
    with pytest.raises(GroupAuthorizationFailedError):
        await asyncio.wait_for(
            read_one(secure, as_service(secure, "intake"), INTAKE_REQUESTS.name, "ntx-alerts"),
            30,
        )


async def test_a_wrong_password_is_refused(secure):
    options = as_service(secure, "intake") | {"sasl_plain_password": "not-the-password"}
    with pytest.raises((KafkaConnectionError, KafkaError)):
        await send(secure, options, INTAKE_DECISIONS.name)


async def test_intake_service_runs_as_its_principal(secure, infra, tmp_path):
    """The faust worker, its relay and its group (``ntx-intake``, so the schema has no
    test prefix), all as ``ntx-intake``: a request sent by the health system (here the
    administrator) comes back as a decision."""
    assert secure.security is not None
    env = service_env(
        secure.bootstrap,
        infra.database_url,
        {
            **secure.security.client_env(principal("intake")),
            "NTX_KAFKA_REPLICATION_FACTOR": "1",
            "NTX_KAFKA_MIN_INSYNC_REPLICAS": "1",
        },
    )
    procs = ServiceProcesses(env, tmp_path)
    procs.start("intake")
    try:
        assert await asyncio.to_thread(procs.wait_healthy, 120, assigned=True)
        now = datetime.now(UTC)
        request = intake("pt-secure", "xr", now.date() - timedelta(days=10), now)
        await send(secure, admin(secure), INTAKE_REQUESTS.name, encode(request), "pt-secure")
        decision = await asyncio.wait_for(first_decision(secure, "pt-secure"), timeout=60)
        assert decision["type"].startswith("ntx.intake.")
        assert decision["subject"] == "pt-secure"
    finally:
        procs.stop_all()
    log = (tmp_path / "intake.log").read_text()
    assert secure.security.passwords[principal("intake")] not in log  # secrets never logged


async def first_decision(kafka: KafkaCluster, patient: str) -> dict:
    consumer = AIOKafkaConsumer(
        INTAKE_DECISIONS.name,
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        **admin(kafka),
    )
    await consumer.start()
    try:
        async for record in consumer:
            if record.key == patient.encode():
                return json.loads(record.value)
        raise AssertionError("unreachable")
    finally:
        await consumer.stop()
