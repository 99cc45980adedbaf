"""Apache Kafka for development, tests and ``ntx run`` (DESIGN.md §2): the project's own
broker jars (``deploy/kafka/pom.xml``, copied by ``make install``) run with the
machine's JDK in KRaft mode, one node or a cluster of them, on free loopback ports.

Each node is broker and controller at once; ``start()`` formats its storage the first
time, starts the JVM with a bounded heap, and returns once every node answers Kafka
requests and the cluster lists all its brokers. A node keeps its data directory across
stop, kill and restart (the same ports), as a real broker would. Children are started
and supervised by :class:`shared.infra._Child` (parent-death signal, ``atexit``).

Where no JDK or no jars are found, :func:`make_broker` falls back to Tansu (the
``EmbeddedBroker`` of :mod:`shared.infra`) and says why.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from shared.infra import EmbeddedBroker, _check_alive, _Child, _tail, free_port, kafka_ping
from shared.kafka_security import BrokerSecurity

log = logging.getLogger("ntx.kafka")

#: Where ``make install`` copies the broker jars (``$VENV/share/ntx-kafka/libs``);
#: ``NTX_KAFKA_LIBS`` points elsewhere.
DEFAULT_LIBS = Path(sys.prefix) / "share" / "ntx-kafka" / "libs"
#: Heap of each embedded node. Kafka's own default is 1 GiB; NTX's development load
#: (a few hundred thousand small records) runs in far less, and three nodes share a
#: 2-core, shared machine in the fault test.
DEFAULT_HEAP_MB = 384
#: Partitions of the broker's internal topics (50 by default): fewer start faster.
INTERNAL_TOPIC_PARTITIONS = 10


def kafka_libs(env: Mapping[str, str] | None = None) -> Path:
    source = os.environ if env is None else env
    return Path(source.get("NTX_KAFKA_LIBS") or DEFAULT_LIBS)


def kafka_version(libs: Path) -> str | None:
    """The broker's version, from its jar's name (``kafka_2.13-4.4.0.jar``)."""
    found = sorted(libs.glob("kafka_2.13-*.jar"))
    return found[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if found else None


def java_binary(env: Mapping[str, str] | None = None) -> str | None:
    source = os.environ if env is None else env
    home = source.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def unavailable_reason(env: Mapping[str, str] | None = None) -> str | None:
    """Why Apache Kafka cannot run here (None when it can)."""
    if java_binary(env) is None:
        return "no JDK found (java)"
    if kafka_version(kafka_libs(env)) is None:
        return f"no Kafka jars in {kafka_libs(env)} (run make install)"
    return None


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
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaNode:
    """One KRaft node (broker and controller) of a :class:`KafkaCluster`."""

    def __init__(self, cluster: KafkaCluster, node_id: int, port: int, controller_port: int):
        self.cluster, self.node_id = cluster, node_id
        self.port, self.controller_port = port, controller_port
        self.dir = cluster.run_dir / f"node-{node_id}"
        self.log_path = self.dir / "server.log"
        self.startup_seconds: float | None = None
        self._child = _Child(f"kafka node {node_id}", signal.SIGTERM, signal.SIGKILL)
        self._began = 0.0
        self._started_before = 0

    @property
    def pid(self) -> int | None:
        return self._child.proc.pid if self._child.running and self._child.proc else None

    @property
    def running(self) -> bool:
        return self._child.running

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def rss_mb(self) -> float | None:
        """Resident memory now, from ``/proc`` (Linux)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (OSError, TypeError):
            return None
        kb = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0
        )
        return kb / 1024

    def write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "server.properties"
        lines = [f"{k}={v}" for k, v in self.cluster.node_properties(self).items()]
        path.write_text("\n".join(lines) + "\n")
        (self.dir / "log4j2.properties").write_text(_LOG4J)
        return path

    def format(self) -> None:
        """Format the storage once (KRaft needs it before the first start)."""
        if (self.data_dir / "meta.properties").exists():
            return
        argv = self._java("kafka.tools.StorageTool", heap_mb=128)
        argv += ["format", "-t", self.cluster.cluster_id, "-c", str(self.write_config())]
        argv += ["--ignore-formatted", *self.cluster.format_args()]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"kafka storage format failed:\n{done.stdout}{done.stderr}")

    def spawn(self) -> None:
        self.format()
        config = self.write_config()
        self._began = time.monotonic()
        self._started_before = _started_lines(self.log_path)
        argv = self._java("kafka.Kafka", heap_mb=self.cluster.heap_mb) + [str(config)]
        self._child.spawn(argv, self.log_path, cwd=self.dir, env=self.cluster.java_env())

    def _java(self, main: str, *, heap_mb: int) -> list[str]:
        libs = self.cluster.libs
        return [
            self.cluster.java,
            f"-Xmx{heap_mb}m",
            f"-Xms{min(heap_mb, 64)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            main,
        ]

    def wait_ready(self, deadline: float, brokers: int) -> None:
        """Until this node answers and its metadata lists ``brokers`` brokers."""
        while True:
            _check_alive(self._child, self.log_path)
            if self._answers(brokers):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"kafka node {self.node_id} not ready on port {self.port}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.1)
        self.startup_seconds = time.monotonic() - self._began

    def _answers(self, brokers: int) -> bool:
        """A plain listener is asked for its metadata; a SASL one answers only after
        authentication, so there the broker's own "started" line counts."""
        if self.cluster.security is not None:
            return _started_lines(self.log_path) > self._started_before
        try:
            return kafka_ping("127.0.0.1", self.port) >= brokers
        except (OSError, ValueError):
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: a controlled shutdown (leadership moves away, logs are flushed)."""
        self._child.stop(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would: what the OS had accepted stays on disk."""
        self._child.kill()

    def pause(self) -> None:
        self._child.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._child.signal(signal.SIGCONT)


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


def _started_lines(log_path: Path) -> int:
    try:
        return log_path.read_text(errors="replace").count("Kafka Server started")
    except OSError:
        return 0


_LOG4J = """\
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=OUT
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
logger.started.name=kafka.server.KafkaRaftServer
logger.started.level=INFO
"""
