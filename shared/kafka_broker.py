"""Apache Kafka for development, tests and ``ntx run`` (DESIGN.md §2): a KRaft cluster
of one node (``ntx run``, most tests) or three (the replication fault test) on free
loopback ports, built from :class:`shared.kafka_node.KafkaNode`.

``start()`` formats each node's storage the first time, starts them all (a quorum
forms only once a majority runs), and returns once every node lists every broker.
Where no JDK or no jars are found, :func:`make_broker` falls back to Tansu (the
``EmbeddedBroker`` of :mod:`shared.infra.tansu`) and says why.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from shared.infra.children import free_port
from shared.infra.tansu import EmbeddedBroker
from shared.kafka_node import KafkaNode, java_binary, kafka_libs, kafka_version, unavailable_reason
from shared.kafka_security import ADMIN, SERVICES, BrokerSecurity, grant, service_acls

log = logging.getLogger("ntx.kafka")

#: Heap of each embedded node. Kafka's own default is 1 GiB; NTX's development load
#: (a few hundred thousand small records) runs in far less, and three nodes share a
#: 2-core, shared machine in the fault test.
DEFAULT_HEAP_MB = 384
#: Partitions of the broker's internal topics (50 by default): fewer start faster.
INTERNAL_TOPIC_PARTITIONS = 10
OFFSETS = "__consumer_offsets"


def make_broker(
    run_dir: Path, *, brokers: int = 1, env: Mapping[str, str] | None = None
) -> KafkaCluster | EmbeddedBroker:
    """Apache Kafka where a JDK and the jars are found, else Tansu (a single node only).
    ``NTX_EMBEDDED_BROKER=tansu`` forces the fallback (its smoke test uses it)."""
    source = os.environ if env is None else env
    choice = source.get("NTX_EMBEDDED_BROKER", "auto")
    reason = "NTX_EMBEDDED_BROKER=tansu" if choice == "tansu" else unavailable_reason(source)
    if reason is None:
        return KafkaCluster(run_dir / "kafka", brokers=brokers, env=source)
    if choice == "kafka" or brokers > 1:
        raise RuntimeError(f"Apache Kafka cannot run: {reason}")
    broker = EmbeddedBroker(run_dir)
    broker.fallback_reason = reason  # type: ignore[attr-defined]
    return broker


def _cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes). Like
    Kafka's own ``Uuid.randomUuid``, never one starting with "-": a command line would
    read it as an option (``kafka-storage format -t -x…`` fails)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaCluster:
    """``brokers`` KRaft nodes on loopback; the interface of the Tansu ``EmbeddedBroker``
    (``start``, ``stop``, ``bootstrap``, ``pause``, ``resume``) plus per-node faults.
    With ``security``, clients authenticate with SASL/SCRAM-SHA-512 (over TLS when it
    has certificates) and ACLs decide what each principal may do."""

    def __init__(
        self,
        run_dir: Path | str,
        *,
        brokers: int = 1,
        heap_mb: int | None = None,
        security: BrokerSecurity | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        source = os.environ if env is None else env
        self.run_dir = Path(run_dir).resolve()
        self.brokers = brokers
        self.heap_mb = heap_mb or int(source.get("NTX_KAFKA_HEAP_MB", DEFAULT_HEAP_MB))
        self.security = security
        self.libs = kafka_libs(source).resolve()
        self.version = kafka_version(self.libs) or "unknown"
        self.java = java_binary(source) or "java"
        self.nodes: list[KafkaNode] = []
        self.cluster_id = ""
        self.startup_seconds: float | None = None
        self.log_path = self.run_dir / "node-1" / "server.log"

    # --- what it is ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"Apache Kafka {self.version}"

    def describe(self) -> str:
        nodes = "1 node" if self.brokers == 1 else f"{self.brokers} nodes"
        return f"{self.name} (KRaft, {nodes}) on {self.bootstrap}"

    @property
    def bootstrap(self) -> str:
        if not self.nodes:
            raise RuntimeError("broker not started")
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def replication_factor(self) -> int:
        """3 on a cluster, 1 only on a single development node."""
        return min(self.brokers, 3)

    @property
    def min_insync_replicas(self) -> int:
        return max(1, self.replication_factor - 1)

    @property
    def pid(self) -> int | None:
        return self.nodes[0].pid if self.nodes else None

    @property
    def running(self) -> bool:
        return bool(self.nodes) and all(n.running for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def rss_mb(self) -> dict[int, float | None]:
        return {n.node_id: n.rss_mb() for n in self.nodes}

    # --- lifecycle ----------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> KafkaCluster:
        if self.running:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        if not self.nodes:
            self.cluster_id = self._stored_cluster_id() or _cluster_id()
            self.nodes = [
                KafkaNode(self, i, free_port(), free_port()) for i in range(1, self.brokers + 1)
            ]
        try:
            for node in self.nodes:
                node.format()
            for node in self.nodes:  # a quorum forms only once a majority runs
                if not node.running:
                    node.spawn()
            for node in self.nodes:
                node.wait_ready(began + timeout, self.brokers)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        log.info("%s up in %.2fs", self.describe(), self.startup_seconds)
        return self

    def _stored_cluster_id(self) -> str | None:
        """The id a previous run formatted with (``ntx run`` keeps ``var/kafka``)."""
        meta = self.run_dir / "node-1" / "data" / "meta.properties"
        if not meta.exists():
            return None
        for line in meta.read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
        return None

    def stop(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node._child.signal(signal.SIGCONT)
            node._child.signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop(timeout)

    def restart_node(self, node_id: int, timeout: float = 120.0) -> None:
        """Start a stopped or killed node again on its ports and its data."""
        node = self.node(node_id)
        node.spawn()
        node.wait_ready(time.monotonic() + timeout, self.brokers)

    def restart(self, timeout: float = 120.0) -> KafkaCluster:
        """Stop every node (controlled) and start them again: same ports, same data."""
        self.stop()
        return self.start(timeout)

    def pause(self) -> None:
        """Freeze every node (SIGSTOP): connections stay open, nothing is answered."""
        for node in self.nodes:
            node.pause()

    def resume(self) -> None:
        for node in self.nodes:
            node.resume()

    def grant_service_acls(self, services: tuple[str, ...] = SERVICES) -> None:
        """Each service's principal gets its topics and its group (least privilege)."""
        if self.security is None:
            raise RuntimeError("ACLs need a cluster started with security")
        admin_config = self.security.admin_config(self.run_dir)
        for service in services:
            grant(
                self.java, self.libs, self.bootstrap, admin_config, service, service_acls(service)
            )

    # --- replicas (fault tests) -----------------------------------------------------

    async def partitions(self) -> list[dict]:
        """Leader, replicas and in-sync replicas of every partition of the NTX topics
        and the consumer offsets (what a broker's death disturbs)."""
        from aiokafka.admin import AIOKafkaAdminClient

        options = self.security.client_options(ADMIN) if self.security else {}
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **options)
        await admin.start()
        try:
            topics = await admin.describe_topics()
        finally:
            await admin.close()
        wanted = [t for t in topics if t["topic"].startswith("ntx.") or t["topic"] == OFFSETS]
        return [p | {"topic": t["topic"]} for t in wanted for p in t["partitions"]]

    async def leader_counts(self) -> Counter[int]:
        """How many partitions each node leads now."""
        return Counter(p["leader"] for p in await self.partitions() if p["leader"] >= 0)

    async def wait_in_sync(self, timeout: float = 120.0) -> None:
        """Until every partition has a leader and all its replicas in sync (a restarted
        node has caught up), so the next fault finds a whole cluster."""
        deadline = time.monotonic() + timeout
        while True:
            lagging: list[object]
            try:
                lagging = [
                    p for p in await self.partitions() if set(p["isr"]) != set(p["replicas"])
                ]
            except Exception as exc:  # a broker just died or came back: ask again
                lagging = [exc]
            if not lagging:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replicas not in sync after {timeout}s: {lagging[:5]}")
            await asyncio.sleep(0.5)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration ------------------------------------------------------------

    def java_env(self) -> dict[str, str]:
        """The parent's environment less what Kafka's scripts would read as options."""
        drop = ("KAFKA_OPTS", "KAFKA_HEAP_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "JAVA_TOOL_OPTIONS")
        return {k: v for k, v in os.environ.items() if k not in drop}

    def format_args(self) -> list[str]:
        return self.security.format_args() if self.security else []

    def node_properties(self, node: KafkaNode) -> dict[str, str]:
        rf, isr = self.replication_factor, self.min_insync_replicas
        client = self.security.client_protocol if self.security else "PLAINTEXT"
        controller = self.security.controller_protocol if self.security else "PLAINTEXT"
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": ",".join(
                f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes
            ),
            "listeners": f"CLIENT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{node.port}",
            "listener.security.protocol.map": f"CLIENT:{client},CONTROLLER:{controller}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "CLIENT",
            "log.dirs": str(node.data_dir),
            "num.partitions": "6",
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(isr),
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(isr),
            "transaction.state.log.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
            "unclean.leader.election.enable": "false",  # never elect a replica missing data
            # a group forms at once rather than after 3 s of waiting for more members
            "group.initial.rebalance.delay.ms": "0",
            # a killed node is fenced, and its partitions led elsewhere, in 6 s (9 s default)
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        if self.security:
            props.update(self.security.broker_properties(node.dir))
        return props
