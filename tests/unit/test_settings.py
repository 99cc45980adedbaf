"""Kafka security settings (SASL, TLS) reach aiokafka and faust as configured."""

from __future__ import annotations

import ssl

import faust
import pytest
from pydantic import ValidationError

from shared.app import _credentials
from shared.settings import Settings


def test_plaintext_by_default():
    s = Settings()
    assert s.kafka_client_options() == {"security_protocol": "PLAINTEXT"}
    assert _credentials(s) is None


def test_sasl_ssl_with_scram():
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ntx-intake",
        kafka_sasl_password="secret",
    )
    opts = s.kafka_client_options()
    assert opts["security_protocol"] == "SASL_SSL"
    assert opts["sasl_mechanism"] == "SCRAM-SHA-512"
    assert opts["sasl_plain_username"] == "ntx-intake"
    assert isinstance(opts["ssl_context"], ssl.SSLContext)
    creds = _credentials(s)
    assert isinstance(creds, faust.SASLCredentials) and creds.username == "ntx-intake"


def test_tls_only():
    s = Settings(kafka_security_protocol="SSL")
    assert isinstance(s.kafka_client_options()["ssl_context"], ssl.SSLContext)
    assert isinstance(_credentials(s), faust.SSLCredentials)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("NTX_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("NTX_KAFKA_SASL_MECHANISM", "PLAIN")
    assert Settings().kafka_client_options()["sasl_mechanism"] == "PLAIN"


def test_unknown_protocol_is_refused():
    with pytest.raises(ValidationError, match="kafka_security_protocol"):
        Settings(kafka_security_protocol="SASL_MAGIC")
