"""Runtime settings from the environment (``NTX_*``): where the broker and database are,
and how the plumbing behaves. Clinical numbers live in each service's domain settings."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.secrets import secrets_dir


class Settings(BaseSettings):
    #: A secret may be a file of the secrets directory named as its variable
    #: (``/run/secrets/ntx_kafka_sasl_password``; shared/secrets.py).
    model_config = SettingsConfigDict(env_prefix="NTX_", extra="ignore", secrets_dir=secrets_dir())

    kafka_bootstrap: str = "127.0.0.1:9092"
    #: SASL/TLS for production brokers; the embedded broker uses PLAINTEXT.
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$"
    )
    kafka_sasl_mechanism: str | None = Field(
        default=None, pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$"
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None

    #: Topics as ``ntx migrate`` creates them: partitions of each patient-keyed topic
    #: (the most workers a service can spread over), copies of each partition, and how
    #: many copies must hold a write before the broker acknowledges it (acks=all).
    #: 3 and 2 survive the loss of one broker with no loss and no stop (Kafka's
    #: documented production setting); the embedded single development node uses 1.
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_replication_factor: int = Field(default=3, ge=1)
    kafka_min_insync_replicas: int = Field(default=2, ge=1)
    #: Idempotent producers: a retried send is written once (the broker dedupes by
    #: producer id and sequence). Off only for the Tansu fallback, which has no
    #: InitProducerId; there the consumers' inbox drops the repeats instead.
    kafka_idempotence: bool = True

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    #: Per-service database URLs (least privilege); fall back to ``database_url``.
    intake_database_url: str | None = None
    scheduler_database_url: str | None = None
    alerts_database_url: str | None = None
    notifier_database_url: str | None = None
    gateway_database_url: str | None = None
    db_pool_min: int = 1
    db_pool_max: int = 5

    http_host: str = "127.0.0.1"
    #: Where /health, /livez, /readyz and /metrics listen: loopback unless an operator
    #: opens it (``0.0.0.0`` in a container whose port is published on purpose).
    http_bind: str = "127.0.0.1"
    http_port: int = 0
    log_level: str = "INFO"

    #: Faust broker timeouts. A worker killed with kill -9 leaves its group only when
    #: its session expires, so its replacement waits that long for the partitions:
    #: measured on Apache Kafka 4.4, 8-15 s at 6 s, 44 s at Kafka's default 45 s.
    broker_session_timeout_s: float = 6.0
    broker_heartbeat_interval_s: float = 1.0
    broker_rebalance_timeout_s: float = 6.0
    #: How often consumed offsets are committed; simulations use 0.1 s.
    broker_commit_interval_s: float = 1.0
    #: Longest wait of a consumer's fetch for new records (see shared/faust_transport);
    #: None keeps faust's own. Apache Kafka answers a fetch as soon as records arrive,
    #: so only the Tansu fallback, which holds every fetch for the full wait, sets it.
    kafka_fetch_max_wait_ms: int | None = Field(default=None, ge=1, le=1500)

    #: Most messages handled in one transaction, and how long a partly filled batch
    #: waits for more (the latency a quiet system adds to a message).
    batch_max: int = 500
    batch_wait_s: float = 0.01
    #: A batch (or a message) failing this many times in a row with an error that is
    #: not an outage is given up: its messages are handled one by one and a message
    #: that still fails is dead-lettered, so one message never stops a partition.
    poison_attempts: int = Field(default=3, ge=1, le=20)
    #: A batch held, a loop failing, or input left untouched this long makes the
    #: service report itself stalled (/readyz and /health answer 503).
    stall_after_s: float = Field(default=30.0, gt=0)
    #: Longest a worker takes to stop after SIGTERM before it exits as a crash would
    #: (nothing acknowledged unhandled; what it held is redelivered): within the 30 s
    #: that ntx run and docker compose wait before they SIGKILL.
    stop_grace_s: float = Field(default=20.0, gt=0)
    relay_batch: int = 1000
    relay_poll_s: float = 0.05
    timer_batch: int = 500
    timer_poll_s: float = 0.05
    #: Published outbox rows and inbox entries are kept this long, then pruned.
    outbox_keep_s: float = 86400.0
    inbox_keep_s: float = 30 * 86400.0
    housekeeping_every_s: float = 60.0
    #: Rolling horizon of materialised schedule items (see services/scheduler).
    schedule_horizon_hours: int = 48

    @model_validator(mode="after")
    def _insync_fits(self) -> Settings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError("kafka_min_insync_replicas: must not exceed kafka_replication_factor")
        return self

    def database_url_for(self, service: str) -> str:
        return getattr(self, f"{service}_database_url", None) or self.database_url

    def producer_options(self) -> dict[str, object]:
        """aiokafka producer keyword arguments: acks=all, idempotent, security."""
        return {
            "acks": "all",
            "enable_idempotence": self.kafka_idempotence,
            **self.kafka_client_options(),
        }

    def kafka_client_options(self) -> dict[str, object]:
        """aiokafka keyword arguments for security; empty for PLAINTEXT."""
        opts: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            opts["ssl_context"] = create_ssl_context(
                cafile=self.kafka_ssl_cafile,
                certfile=self.kafka_ssl_certfile,
                keyfile=self.kafka_ssl_keyfile,
            )
        if self.kafka_security_protocol.startswith("SASL"):
            opts["sasl_mechanism"] = self.kafka_sasl_mechanism or "PLAIN"
            opts["sasl_plain_username"] = self.kafka_sasl_username
            opts["sasl_plain_password"] = self.sasl_password()
        return opts

    def sasl_password(self) -> str | None:
        """The SASL password in clear, for the client that sends it and no one else."""
        return self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None


ENDPOINTS_FILE = "endpoints.json"


def write_endpoints(
    data_dir: Path, bootstrap: str, database_url: str, extra: dict[str, str] | None = None
) -> None:
    """``ntx run`` records where its embedded broker and database listen (and settings
    its broker needs, ``NTX_*`` names), so ``ntx send`` in another terminal finds them
    without exporting anything."""
    payload = {"kafka_bootstrap": bootstrap, "database_url": database_url}
    payload |= {k.removeprefix("NTX_").lower(): v for k, v in (extra or {}).items()}
    (data_dir / ENDPOINTS_FILE).write_text(json.dumps(payload))


def _running_endpoints() -> dict[str, str]:
    path = Path(os.environ.get("NTX_DATA_DIR", "var")) / ENDPOINTS_FILE
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in found.items() if f"NTX_{k.upper()}" not in os.environ}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    # validated, not copied in: they are strings from a file
    return Settings.model_validate(_running_endpoints())
