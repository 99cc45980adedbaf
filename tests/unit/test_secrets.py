"""Secrets (DESIGN.md §10): passwords are SecretStr, may come from files of the
secrets directory, and never show in a repr, a dump, a log line or ``ntx`` output."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from shared.logs import JsonFormatter
from shared.secrets import secret
from shared.settings import Settings

MARKER = "s3cret-marker-4711"


def sasl(**given) -> Settings:
    return Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN", **given)


def test_a_password_is_used_but_never_shown(monkeypatch):
    monkeypatch.setenv("NTX_KAFKA_SASL_PASSWORD", MARKER)
    settings = sasl()
    assert settings.kafka_client_options()["sasl_plain_password"] == MARKER
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert MARKER not in shown
    record = logging.makeLogRecord({"msg": "settings", "settings": settings})
    assert MARKER not in JsonFormatter("intake").format(record)


def test_a_password_may_come_from_a_file_named_as_its_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("NTX_KAFKA_SASL_PASSWORD", raising=False)
    (tmp_path / "ntx_kafka_sasl_password").write_text(MARKER + "\n")
    settings = sasl(_secrets_dir=tmp_path)
    assert settings.sasl_password() == MARKER


def test_the_service_database_password_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NTX_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("NTX_SERVICE_DB_PASSWORD", raising=False)
    assert secret("NTX_SERVICE_DB_PASSWORD") is None
    (tmp_path / "ntx_service_db_password").write_text(MARKER + "\n")
    found = secret("NTX_SERVICE_DB_PASSWORD")
    assert found is not None and found.get_secret_value() == MARKER
    assert MARKER not in repr(found)
    monkeypatch.setenv("NTX_SERVICE_DB_PASSWORD", "from-env")
    found = secret("NTX_SERVICE_DB_PASSWORD")
    assert found is not None and found.get_secret_value() == "from-env"  # the environment wins


def test_ntx_output_never_shows_the_password(tmp_path):
    """``ntx send`` with SASL settings and no broker to reach fails, naming the problem,
    not the password."""
    event = tmp_path / "event.json"
    event.write_text("{}")
    env = {
        **os.environ,
        "NTX_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "NTX_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "NTX_KAFKA_SASL_MECHANISM": "PLAIN",
        "NTX_KAFKA_SASL_USERNAME": "ntx-intake",
        "NTX_KAFKA_SASL_PASSWORD": MARKER,
        "NTX_DATA_DIR": str(tmp_path),
    }
    for argv in (["send", "--unchecked", str(event)], ["send", str(event)]):
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0
        assert MARKER not in done.stdout + done.stderr
