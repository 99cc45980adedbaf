"""The production deployment files (docker-compose.yml, deploy/Dockerfile), checked
statically: no Docker engine is needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from services.bootstrap import SERVICES

ROOT = Path(__file__).resolve().parents[1]
APP = ("migrate", *SERVICES)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "deploy" / "Dockerfile").read_text()


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _conditions(service: dict) -> dict[str, str]:
    depends = service.get("depends_on", {})
    assert isinstance(depends, dict), "depends_on needs conditions, not a plain list"
    return {name: spec["condition"] for name, spec in depends.items()}


def test_every_service_exists(services) -> None:
    assert set(services) == {"kafka", "postgres", *APP}


def test_infrastructure_images(services) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:")


def test_kafka_runs_a_single_kraft_node(services) -> None:
    env = _env(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("1@")
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env.get("CLUSTER_ID")


def test_app_services_build_the_one_image(services) -> None:
    images = set()
    for name in APP:
        build = services[name]["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
        images.add(services[name].get("image"))
    assert len(images) == 1


@pytest.mark.parametrize("name", ["kafka", "postgres", *SERVICES])
def test_long_running_services_have_a_healthcheck(services, name) -> None:
    check = services[name]["healthcheck"]
    assert not check.get("disable")
    assert check["test"]
    assert services[name]["restart"] == "unless-stopped"


def test_infrastructure_healthchecks(services) -> None:
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", SERVICES)
def test_service_healthcheck_calls_health_on_its_port(services, name) -> None:
    test = " ".join(services[name]["healthcheck"]["test"])
    port = _env(services[name])["NTX_HTTP_PORT"]
    assert f"127.0.0.1:{port}/health" in test


def test_migrate_runs_once_after_the_infrastructure(services) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert _conditions(migrate) == {"kafka": "service_healthy", "postgres": "service_healthy"}


@pytest.mark.parametrize("name", SERVICES)
def test_services_wait_for_migrations_and_broker(services, name) -> None:
    service = services[name]
    assert service["command"] == ["service", name]
    conditions = _conditions(service)
    assert conditions["migrate"] == "service_completed_successfully"
    assert conditions["kafka"] == "service_healthy"


@pytest.mark.parametrize("name", APP)
def test_app_env_points_at_the_compose_infrastructure(services, name) -> None:
    env = _env(services[name])
    assert env["NTX_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert re.fullmatch(r"postgresql://[^@/]+@postgres:5432/ntx", env["NTX_DATABASE_URL"])
    assert env["NTX_HTTP_PORT"] == "8080"


def test_database_credentials_match(services) -> None:
    pg = _env(services["postgres"])
    url = _env(services["intake"])["NTX_DATABASE_URL"]
    user, password = re.match(r"postgresql://([^:]+):([^@]+)@", url).groups()
    assert (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]) == (
        user,
        password,
        "ntx",
    )
    assert "pg_isready -U ntx -d ntx" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_dockerfile(dockerfile) -> None:
    instructions = [
        line.strip()
        for line in dockerfile.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert instructions[0] == "FROM python:3.11-slim"
    # the locked dependencies by hash, then NTX itself without resolving anything
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert re.search(r"pip install --no-deps \.(\s|$)", dockerfile)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["ntx"]' in instructions
    assert 'CMD ["service", "intake"]' in instructions
    healthcheck = next(line for line in instructions if line.startswith("HEALTHCHECK"))
    assert healthcheck
    assert "/health" in dockerfile and "NTX_HTTP_PORT" in dockerfile and "urllib" in dockerfile


def test_build_context_keeps_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


def test_services_connect_as_their_own_database_roles():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("intake", "scheduler", "alerts"):
        env = compose["services"][name]["environment"]
        assert f"ntx_{name}:" in env[f"NTX_{name.upper()}_DATABASE_URL"]


def test_topic_replication_fits_the_single_broker(services):
    env = _env(services["migrate"])
    assert env["NTX_KAFKA_REPLICATION_FACTOR"] == "1"
    assert env["NTX_KAFKA_MIN_INSYNC_REPLICAS"] == "1"
