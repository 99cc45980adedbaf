"""Choosing the broker, and what each service's principal may do on it (DESIGN.md §2,
§5): pure decisions, no broker started."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.infra import EmbeddedBroker
from shared.kafka_broker import KafkaCluster, make_broker
from shared.kafka_node import kafka_version, unavailable_reason
from shared.kafka_security import Acl, BrokerSecurity, service_acls
from shared.settings import Settings

NO_JDK = {"PATH": "/nonexistent", "JAVA_HOME": ""}


def jars(tmp_path: Path, version: str = "4.4.0") -> Path:
    (tmp_path / f"kafka_2.13-{version}.jar").write_bytes(b"")
    return tmp_path


def test_version_comes_from_the_broker_jar(tmp_path):
    assert kafka_version(jars(tmp_path, "4.4.0")) == "4.4.0"
    assert kafka_version(tmp_path / "empty") is None


def test_without_a_jdk_the_fallback_is_tansu_and_says_why(tmp_path):
    env = NO_JDK | {"NTX_KAFKA_LIBS": str(jars(tmp_path))}
    assert unavailable_reason(env) == "no JDK found (java)"
    broker = make_broker(tmp_path, env=env)
    assert isinstance(broker, EmbeddedBroker)
    assert broker.fallback_reason == "no JDK found (java)"


def test_without_the_jars_the_fallback_names_make_install(tmp_path):
    env = {"NTX_KAFKA_LIBS": str(tmp_path / "none")}
    reason = unavailable_reason(env)
    if reason == "no JDK found (java)":
        pytest.skip("this machine has no JDK; the JDK case is tested above")
    assert reason is not None and "make install" in reason


def test_with_a_jdk_and_the_jars_it_is_apache_kafka(tmp_path):
    env = {"NTX_KAFKA_LIBS": str(jars(tmp_path))}
    if unavailable_reason(env) is not None:
        pytest.skip("this machine has no JDK")
    broker = make_broker(tmp_path, env=env)
    assert isinstance(broker, KafkaCluster) and broker.version == "4.4.0"
    assert (broker.replication_factor, broker.min_insync_replicas) == (1, 1)
    assert KafkaCluster(tmp_path, brokers=3, env=env).replication_factor == 3
    assert KafkaCluster(tmp_path, brokers=3, env=env).min_insync_replicas == 2


def test_the_fallback_can_be_forced_but_never_for_a_cluster(tmp_path):
    env = {"NTX_EMBEDDED_BROKER": "tansu", "NTX_KAFKA_LIBS": str(jars(tmp_path))}
    assert isinstance(make_broker(tmp_path, env=env), EmbeddedBroker)
    with pytest.raises(RuntimeError, match="Apache Kafka cannot run"):
        make_broker(tmp_path, brokers=3, env=env)


def test_intake_reads_requests_and_writes_decisions_and_dead_letters_only():
    assert service_acls("intake") == [
        Acl("topic", "ntx.intake.requests.v1", ("Read", "Describe")),
        Acl("topic", "ntx.intake.decisions.v1", ("Write", "Describe")),
        Acl("topic", "ntx.dlq.v1", ("Write", "Describe")),
        Acl("group", "ntx-intake", ("Read", "Describe")),
    ]


@pytest.mark.parametrize(
    ("service", "reads", "writes"),
    [
        ("scheduler", {"ntx.intake.decisions.v1", "ntx.clinical.events.v1"}, {"ntx.schedule.v1"}),
        (
            "alerts",
            {"ntx.clinical.events.v1", "ntx.schedule.v1", "ntx.deliveries.v1"},
            {"ntx.alerts.v1", "ntx.notifications.v1"},
        ),
    ],
)
def test_each_service_reads_its_inputs_and_writes_its_outputs(service, reads, writes):
    acls = service_acls(service)
    topic_reads = {a.name for a in acls if a.resource == "topic" and "Read" in a.operations}
    topic_writes = {a.name for a in acls if a.resource == "topic" and "Write" in a.operations}
    assert topic_reads == reads
    assert topic_writes == writes | {"ntx.dlq.v1"}
    assert [a.name for a in acls if a.resource == "group"] == [f"ntx-{service}"]
    assert not [a for a in acls if {"Create", "Delete", "Alter", "All"} & set(a.operations)]


def test_security_properties_deny_what_no_acl_allows(tmp_path):
    security = BrokerSecurity(passwords={"admin": "pw", "ntx-intake": "pw2"})
    props = security.broker_properties(tmp_path)
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    assert security.client_protocol == "SASL_PLAINTEXT"
    assert "--add-scram" in security.format_args()
    assert "SCRAM-SHA-512=[name=ntx-intake,password=pw2]" in security.format_args()


def test_min_insync_replicas_may_not_exceed_the_replication_factor(monkeypatch):
    for name in ("NTX_KAFKA_REPLICATION_FACTOR", "NTX_KAFKA_MIN_INSYNC_REPLICAS"):
        monkeypatch.delenv(name, raising=False)  # the embedded test broker sets them
    with pytest.raises(ValidationError, match="kafka_min_insync_replicas"):
        Settings(kafka_replication_factor=1, kafka_min_insync_replicas=2)
    assert Settings().kafka_replication_factor == 3
    assert Settings().kafka_min_insync_replicas == 2


def test_cluster_ids_never_read_as_a_command_line_option(monkeypatch):
    """One id in 64 would start with "-", and ``kafka-storage format -t -…`` refuses it."""
    import uuid

    import shared.kafka_broker as kafka_broker

    # 0xF8 puts 62 ("-") in the first base64 digit; the second draw is an ordinary id
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" * 16)])
    monkeypatch.setattr(kafka_broker.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka_broker._cluster_id()
    assert cluster_id == "EBAQEBAQEBAQEBAQEBAQEA"
    assert len(cluster_id) == 22
