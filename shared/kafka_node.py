"""One Apache Kafka node for development and tests (DESIGN.md §2): where the project's
broker jars are (``deploy/kafka/pom.xml``, copied by ``make install``), which JDK runs
them, and :class:`KafkaNode`, one KRaft process (broker and controller at once) of a
:class:`shared.kafka_broker.KafkaCluster`.

A node formats its storage the first time, runs with a bounded heap, and keeps its
data directory and ports across stop, kill and restart, as a real broker would. It is
started and supervised by :class:`shared.infra.children.Child` (parent-death signal, ``atexit``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shared.infra.children import Child, RunsAsChild, check_alive, tail
from shared.infra.kafka_wire import kafka_ping

if TYPE_CHECKING:
    from shared.kafka_broker import KafkaCluster

#: Where ``make install`` copies the broker jars (``$VENV/share/ntx-kafka/libs``);
#: ``NTX_KAFKA_LIBS`` points elsewhere.
DEFAULT_LIBS = Path(sys.prefix) / "share" / "ntx-kafka" / "libs"


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
    return shutil.which("java", path=source.get("PATH"))


def unavailable_reason(env: Mapping[str, str] | None = None) -> str | None:
    """Why Apache Kafka cannot run here (None when it can)."""
    if java_binary(env) is None:
        return "no JDK found (java)"
    if kafka_version(kafka_libs(env)) is None:
        return f"no Kafka jars in {kafka_libs(env)} (run make install)"
    return None


class KafkaNode(RunsAsChild):
    """One KRaft node (broker and controller) of a :class:`KafkaCluster`."""

    def __init__(self, cluster: KafkaCluster, node_id: int, port: int, controller_port: int):
        self.cluster, self.node_id = cluster, node_id
        self.port, self.controller_port = port, controller_port
        self.dir = cluster.run_dir / f"node-{node_id}"
        self.log_path = self.dir / "server.log"
        self.startup_seconds: float | None = None
        self._child = Child(f"kafka node {node_id}", signal.SIGTERM, signal.SIGKILL)
        self._began = 0.0
        self._started_before = 0

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
        argv += [
            "format",
            f"--cluster-id={self.cluster.cluster_id}",
            "-c",
            str(self.write_config()),
        ]
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
            check_alive(self._child, self.log_path)
            if self._answers(brokers):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"kafka node {self.node_id} not ready on port {self.port}:\n{tail(self.log_path)}"
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
