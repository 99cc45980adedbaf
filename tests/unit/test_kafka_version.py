"""One Apache Kafka version everywhere (DESIGN.md §2): the broker ``make install``
fetches, the compose image and the testcontainers image."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from tests.conftest import KAFKA_IMAGE

ROOT = Path(__file__).resolve().parents[2]
POM = "{http://maven.apache.org/POM/4.0.0}"


def pinned() -> str:
    tree = ET.parse(ROOT / "deploy" / "kafka" / "pom.xml")
    version = tree.find(f"{POM}properties/{POM}kafka.version")
    assert version is not None and version.text
    return version.text


def test_the_pom_pins_an_exact_kafka_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned())


def test_compose_and_testcontainers_run_the_pinned_version():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{pinned()}"
    assert f"apache/kafka:{pinned()}" == KAFKA_IMAGE


def test_the_broker_comes_from_the_pom():
    tree = ET.parse(ROOT / "deploy" / "kafka" / "pom.xml")
    artifacts = {d.findtext(f"{POM}artifactId") for d in tree.iter(f"{POM}dependency")}
    assert "kafka_2.13" in artifacts  # the broker and its storage tool
