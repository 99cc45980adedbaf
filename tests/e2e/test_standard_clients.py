"""Standard clients against the stack ``ntx run`` starts (DESIGN.md §2 and §7): kcat,
the librdkafka command-line client most non-Java clients share, lists the ``ntx.*``
topics and reads a decision off ``ntx.intake.decisions.v1``. (Against Tansu 0.6.0 it
failed at once: ``ApiVersionRequest failed ... Read underflow``.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from shared.kafka_node import unavailable_reason
from shared.topics import ALL_TOPICS, INTAKE_DECISIONS
from tests.e2e.running import exported, ntx_run, send_example

pytestmark = pytest.mark.infra


def kcat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", *args], capture_output=True, text=True, timeout=60)


def test_kcat_lists_the_topics_and_reads_a_decision(tmp_path):
    if shutil.which("kcat") is None:
        pytest.skip("kcat is not installed (make install installs it as root)")
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"the fallback broker does not answer kcat: {reason}")
    with ntx_run(tmp_path) as lines:
        assert any(line.startswith("ntx: broker Apache Kafka") for line in lines), lines
        bootstrap = exported(lines, "NTX_KAFKA_BOOTSTRAP")

        listed = kcat("-b", bootstrap, "-L", "-J")
        assert listed.returncode == 0, listed.stderr
        metadata = json.loads(listed.stdout)
        topics = {t["topic"]: len(t["partitions"]) for t in metadata["topics"]}
        assert {t.name: t.partitions for t in ALL_TOPICS}.items() <= topics.items()
        assert len(metadata["brokers"]) == 1

        send_example(tmp_path, "examples/events/intake_request.json")
        decision = None
        deadline = time.monotonic() + 60
        while decision is None and time.monotonic() < deadline:
            read = kcat(
                "-b", bootstrap, "-C", "-t", INTAKE_DECISIONS.name, "-o", "beginning", "-e",
                "-q", "-f", "%k\t%h\t%s\n",
            )  # fmt: skip
            assert read.returncode == 0, read.stderr
            rows = [line.split("\t", 2) for line in read.stdout.splitlines() if line]
            decision = next((row for row in rows if row[0] == "pt-0001"), None)
            time.sleep(0.5)
    assert decision is not None, "no decision for pt-0001 read by kcat"
    key, _headers, value = decision
    event = json.loads(value)
    assert event["subject"] == key and event["type"].startswith("ntx.intake.")
    assert event["specversion"] == "1.0"
