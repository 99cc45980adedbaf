"""One registry of services and one way to build each (services/bootstrap.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services import bootstrap
from services.cli import build_parser
from shared.clock import SimulatedClock
from shared.kafka_security import SERVICES as PRINCIPALS
from shared.settings import Settings
from shared.topics import ALL_TOPICS


def test_every_registered_service_has_a_spec_named_after_it():
    for name in bootstrap.SERVICES:
        spec = bootstrap.load_spec(name)
        assert spec.name == name and spec.group == f"ntx-{name}"
        assert spec.migrations.is_dir()


def test_an_unknown_service_is_refused_by_name():
    with pytest.raises(ValueError, match="'gatekeeper'"):
        bootstrap.load_spec("gatekeeper")


def test_the_broker_principals_are_the_registered_services():
    assert PRINCIPALS == bootstrap.SERVICES


def test_each_service_consumes_what_the_topic_registry_says():
    for name in bootstrap.SERVICES:
        spec = bootstrap.load_spec(name)
        assert {t.name for t in spec.topics} == {t.name for t in ALL_TOPICS if name in t.consumers}


def test_build_gives_a_runtime_of_that_service_with_what_it_was_given(monkeypatch):
    monkeypatch.setenv("NTX_SCHEMA_PREFIX", "t_")
    clock = SimulatedClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = bootstrap.build("alerts", Settings(), clock)
    assert runtime.spec is bootstrap.load_spec("alerts")
    assert runtime.clock is clock and runtime.schema == "t_alerts"
    assert bootstrap.build("intake", Settings(), clock, schema="other").schema == "other"


def test_the_command_line_offers_the_registered_services():
    parser = build_parser()
    for name in bootstrap.SERVICES:
        assert parser.parse_args(["service", name]).name == name
        assert parser.parse_args(["migrate", name]).service == name
    with pytest.raises(SystemExit):
        parser.parse_args(["service", "gatekeeper"])


def test_every_service_counts_its_plumbing_as_work_left():
    for name in bootstrap.SERVICES:
        names = [w.name for w in bootstrap.load_spec(name).all_work]
        assert names[:2] == ["outbox", "timers"]
    assert [w.name for w in bootstrap.load_spec("scheduler").work] == ["due", "horizon"]


def test_work_sql_names_the_service_schema_and_its_settings():
    horizon = bootstrap.load_spec("scheduler").work[1]
    sql = horizon.sql(horizon.count, "scheduler", Settings(schedule_horizon_hours=48))
    assert "FROM scheduler.plans" in sql and "interval '1 hour' * 48 / 2" in sql


def test_every_service_may_connect_as_its_own_role():
    """``ntx run`` and compose give each service ``NTX_<NAME>_DATABASE_URL``; a
    service without the setting would connect as the administrator."""
    for name in bootstrap.SERVICES:
        url = f"postgresql://ntx_{name}@db/ntx"
        assert Settings(**{f"{name}_database_url": url}).database_url_for(name) == url
