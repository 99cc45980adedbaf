"""Least privilege on the broker (DESIGN.md §5): SASL/SCRAM-SHA-512 users, TLS, and the
ACLs that let each service's principal read only its input topics (and its consumer
group) and write only its output topics.

The grants come from the topic registry (:mod:`shared.topics`: who produces and who
consumes each topic), so they change when the topics do. :func:`service_acls` is what
an operator grants on any Kafka cluster; :class:`BrokerSecurity` switches it on for
the embedded broker (users created when the storage is formatted, ACLs through
Kafka's own ``AclCommand``)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.topics import ALL_TOPICS, DLQ

#: The services with a principal: every service may write dead letters, so the
#: topic registry's writers of ``ntx.dlq.v1`` (the same list as services/bootstrap.py's
#: registry, which shared/ may not import; a unit test keeps them equal).
SERVICES: tuple[str, ...] = DLQ.producers
MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"


def principal(service: str) -> str:
    """The broker user a service authenticates as (``NTX_KAFKA_SASL_USERNAME``)."""
    return f"ntx-{service}"


@dataclass(frozen=True)
class Acl:
    """One grant: ``operations`` on a ``resource`` (``topic`` or ``group``) ``name``."""

    resource: str
    name: str
    operations: tuple[str, ...]


def service_acls(service: str) -> list[Acl]:
    """Read (and Describe) on its input topics and its consumer group ``ntx-<service>``;
    Write (and Describe) on its output topics and the dead-letter topic. Nothing else:
    no Create (``ntx migrate`` creates topics as an administrator), no other group."""
    inputs = [t.name for t in ALL_TOPICS if service in t.consumers]
    outputs = [t.name for t in ALL_TOPICS if service in t.producers and t is not DLQ]
    acls = [Acl("topic", name, ("Read", "Describe")) for name in inputs]
    acls += [Acl("topic", name, ("Write", "Describe")) for name in [*outputs, DLQ.name]]
    acls.append(Acl("group", f"ntx-{service}", ("Read", "Describe")))
    return acls


@dataclass(frozen=True)
class Tls:
    """PEM files: the CA clients trust and the broker's key and certificate chain."""

    ca: Path
    server: Path


def make_certificates(directory: Path, *, days: int = 2) -> Tls:
    """A throw-away CA and a broker certificate for 127.0.0.1 (openssl)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca]
        + ["-days", str(days), "-subj", "/CN=ntx-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr]
        + ["-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial"]
        + ["-out", crt, "-days", str(days), "-extfile", ext],
    ]
    for step in steps:
        subprocess.run(["openssl", *map(str, step)], check=True, capture_output=True)
    server = directory / "server.pem"
    server.write_text(key.read_text() + crt.read_text())  # PKCS#8 key, then the chain
    return Tls(ca, server)


@dataclass
class BrokerSecurity:
    """SCRAM users (the administrator and one per service) and, with ``tls``, TLS on
    the client listener. The controller listener (loopback, between nodes) uses SASL
    PLAIN with the administrator: SCRAM credentials live in the metadata the
    controllers serve, so they cannot authenticate the controllers themselves."""

    passwords: dict[str, str]
    tls: Tls | None = None

    @property
    def client_protocol(self) -> str:
        return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"

    controller_protocol = "SASL_PLAINTEXT"

    def format_args(self) -> list[str]:
        out = []
        for user, password in self.passwords.items():
            out += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
        return out

    def broker_properties(self, node_dir: Path) -> dict[str, str]:
        admin = self.passwords[ADMIN]
        scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="{u}" password="{p}";'
        plain = (
            'org.apache.kafka.common.security.plain.PlainLoginModule required username="{u}"'
            ' password="{p}" user_{u}="{p}";'
        )
        props = {
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.client.{MECHANISM.lower()}.sasl.jaas.config": scram.format(
                u=ADMIN, p=admin
            ),
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": plain.format(u=ADMIN, p=admin),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
        }
        if self.tls:
            props |= {
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(self.tls.server),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(self.tls.ca),
            }
        return props

    def client_options(self, user: str) -> dict[str, object]:
        """aiokafka keyword arguments for ``user``."""
        opts: dict[str, object] = {
            "security_protocol": self.client_protocol,
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": user,
            "sasl_plain_password": self.passwords[user],
        }
        if self.tls:
            from aiokafka.helpers import create_ssl_context

            opts["ssl_context"] = create_ssl_context(cafile=str(self.tls.ca))
        return opts

    def client_env(self, user: str) -> dict[str, str]:
        """The ``NTX_KAFKA_*`` settings a process needs to connect as ``user``."""
        env = {
            "NTX_KAFKA_SECURITY_PROTOCOL": self.client_protocol,
            "NTX_KAFKA_SASL_MECHANISM": MECHANISM,
            "NTX_KAFKA_SASL_USERNAME": user,
            "NTX_KAFKA_SASL_PASSWORD": self.passwords[user],
        }
        if self.tls:
            env["NTX_KAFKA_SSL_CAFILE"] = str(self.tls.ca)
        return env

    def admin_config(self, directory: Path) -> Path:
        """A Java client properties file for the administrator (for Kafka's tools)."""
        lines = [
            f"security.protocol={self.client_protocol}",
            f"sasl.mechanism={MECHANISM}",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required"
            f' username="{ADMIN}" password="{self.passwords[ADMIN]}";',
        ]
        if self.tls:
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={self.tls.ca}"]
        path = directory / "admin-client.properties"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path


def grant(
    java: str, libs: Path, bootstrap: str, admin_config: Path, service: str, acls: list[Acl]
) -> None:
    """Add ``acls`` for ``service``'s principal with Kafka's ``AclCommand`` (one run per
    set of operations: each run grants its operations on every resource it names)."""
    by_ops: dict[tuple[str, ...], list[Acl]] = {}
    for acl in acls:
        by_ops.setdefault(acl.operations, []).append(acl)
    for operations, group in by_ops.items():
        argv = [
            java,
            "-Xmx128m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            f"{libs}/*",
            "org.apache.kafka.tools.AclCommand",
        ]
        argv += ["--bootstrap-server", bootstrap, "--command-config", str(admin_config)]
        argv += ["--add", "--allow-principal", f"User:{principal(service)}"]
        for op in operations:
            argv += ["--operation", op]
        for acl in group:
            argv += [f"--{acl.resource}", acl.name]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"granting ACLs to {principal(service)} failed:\n{done.stderr}")
