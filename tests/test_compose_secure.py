"""The secured deployment (docker-compose.secure.yml over docker-compose.yml), checked
statically: SASL/SCRAM-SHA-512 over TLS, deny by default, and exactly the grants of
shared/kafka_security.py for each service's principal."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from shared.kafka_security import SERVICES, principal, service_acls
from tests.unit.test_kafka_version import pinned

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def secure() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.secure.yml").read_text())["services"]


def grants_in(command: str) -> dict[str, set[tuple[str, str, str]]]:
    """(resource, name, operation) per principal from the ``acl ...`` lines."""
    found: dict[str, set[tuple[str, str, str]]] = {}
    for line in command.splitlines():
        words = shlex.split(line.strip())
        if not words or words[0] != "acl":
            continue
        pairs = list(zip(words[1::2], words[2::2], strict=True))
        who = next(v for k, v in pairs if k == "--allow-principal").removeprefix("User:")
        ops = [v for k, v in pairs if k == "--operation"]
        resources = [(k.removeprefix("--"), v) for k, v in pairs if k in ("--topic", "--group")]
        found.setdefault(who, set()).update((r, n, op) for r, n in resources for op in ops)
    return found


def test_the_acls_are_the_services_grants(secure):
    command = secure["kafka-acls"]["command"][-1]
    assert grants_in(command) == {
        principal(s): {(a.resource, a.name, op) for a in service_acls(s) for op in a.operations}
        for s in SERVICES
    }


def test_the_broker_authenticates_and_denies_by_default(secure):
    env = secure["kafka"]["environment"]
    assert "CLIENT:SASL_SSL" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:admin"
    assert "PLAINTEXT://" not in env["KAFKA_LISTENERS"]
    for name in ("kafka-format", "kafka-acls"):
        assert secure[name]["image"] == f"apache/kafka:{pinned()}"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_connects_as_its_own_principal(secure, name):
    env = secure[name]["environment"]
    assert env["NTX_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["NTX_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["NTX_KAFKA_SASL_USERNAME"] == principal(name)
    assert re.fullmatch(r"\$\{NTX_KAFKA_[A-Z]+_PASSWORD:\?.*\}", env["NTX_KAFKA_SASL_PASSWORD"])
    assert secure[name]["depends_on"]["kafka-acls"]["condition"] == "service_completed_successfully"


def test_every_principal_gets_a_scram_credential_when_the_storage_is_formatted(secure):
    command = secure["kafka-format"]["command"][-1]
    for user in ("admin", *(principal(s) for s in SERVICES)):
        assert f"SCRAM-SHA-512=[name={user}," in command
