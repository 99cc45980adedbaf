"""The broker and the database for one run (``ntx run``, the cluster driver, tests):
started unless ``NTX_KAFKA_BOOTSTRAP`` / ``NTX_DATABASE_URL`` point elsewhere, and
stopped with what they started."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from shared.infra.postgres import EmbeddedPostgres
from shared.infra.tansu import EmbeddedBroker
from shared.infra.topic_admin import TopicOptions

if TYPE_CHECKING:
    from shared.kafka_broker import KafkaCluster


class EmbeddedStack:
    """Broker and database for one run, as a context manager.

    ``NTX_KAFKA_BOOTSTRAP`` / ``NTX_DATABASE_URL``, when set, are used as they are and
    nothing is started for that part (``broker`` / ``postgres`` stay None). The broker
    is Apache Kafka (``brokers`` KRaft nodes, :mod:`shared.kafka_broker`) where a JDK
    is found, else Tansu. Data and logs go under ``data_dir`` (``var/`` for ``ntx run``,
    a temporary directory in tests).
    """

    def __init__(
        self, data_dir: Path | str, *, env: Mapping[str, str] | None = None, brokers: int = 1
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        source: Mapping[str, str] = os.environ if env is None else env
        self._env = source
        self._brokers = brokers
        self._kafka_env = source.get("NTX_KAFKA_BOOTSTRAP") or None
        self._database_env = source.get("NTX_DATABASE_URL") or None
        self.broker: KafkaCluster | EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self._previous_sigterm: Any = None
        self._sigterm_handler: Any = None

    @property
    def bootstrap(self) -> str:
        if self._kafka_env:
            return self._kafka_env
        if self.broker is None:
            raise RuntimeError("stack not started")
        return self.broker.bootstrap

    @property
    def database_url(self) -> str:
        if self._database_env:
            return self._database_env
        if self.postgres is None:
            raise RuntimeError("stack not started")
        return self.postgres.url

    def describe_broker(self) -> str:
        """One line: which broker this stack uses, and where."""
        if self.broker is None:
            return f"external broker at {self.bootstrap}"
        return self.broker.describe()

    def topic_options(self) -> TopicOptions:
        """Replication for :func:`create_topics` on the embedded broker (1 only on a
        single development node); settings decide for an external one."""
        if self.broker is None:
            return TopicOptions()
        rf, isr = self.broker.replication_factor, self.broker.min_insync_replicas
        return TopicOptions(replication_factor=rf, min_insync_replicas=isr)

    def settings_env(self) -> dict[str, str]:
        """``NTX_*`` settings the processes using this stack's broker need: its topic
        replication; on Tansu no idempotent producer (no InitProducerId there) and a
        short fetch wait (it answers a fetch only when the wait expires)."""
        options = self.topic_options()
        env = (
            {
                "NTX_KAFKA_REPLICATION_FACTOR": str(options["replication_factor"]),
                "NTX_KAFKA_MIN_INSYNC_REPLICAS": str(options["min_insync_replicas"]),
            }
            if options
            else {}
        )
        if isinstance(self.broker, EmbeddedBroker):
            env["NTX_KAFKA_IDEMPOTENCE"] = "false"
            env["NTX_KAFKA_FETCH_MAX_WAIT_MS"] = "100"  # Tansu holds fetches this long
        return env

    def start(self) -> EmbeddedStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._install_sigterm()
        try:
            if not self._kafka_env:
                from shared.kafka_broker import make_broker

                broker = make_broker(self.data_dir, brokers=self._brokers, env=self._env)
                self.broker = broker
                broker.start()
            if not self._database_env:
                self.postgres = EmbeddedPostgres(self.data_dir)
                self.postgres.start(self.data_dir / "pg")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            for part in (self.broker, self.postgres):
                if part is not None:
                    part.stop()
        finally:
            self._restore_sigterm()

    def _install_sigterm(self) -> None:
        """Turn a default (fatal) SIGTERM into SystemExit so ``finally`` blocks and the
        ``atexit`` hook run; leaves an application's own handler alone."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)
        self._sigterm_handler = on_sigterm

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is None:
            return
        with contextlib.suppress(ValueError):  # ValueError: not in the main thread
            if signal.getsignal(signal.SIGTERM) is self._sigterm_handler:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
        self._previous_sigterm = self._sigterm_handler = None

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
