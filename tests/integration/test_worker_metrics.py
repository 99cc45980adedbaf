"""The worker's Prometheus metrics besides the counters (DESIGN.md §10): consumer lag
per assigned partition, how long events waited in the outbox, and how long batches
took, scraped from ``/metrics`` of ``ntx service intake`` on the real stack."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from shared.topics import INTAKE_DECISIONS, INTAKE_REQUESTS
from tests.hostile import valid
from tests.integration.harness import patient_messages, produce
from tests.integration.test_worker_process import service  # noqa: F401 - the fixture

pytestmark = pytest.mark.infra


def sample(metrics: str, name: str, **labels: str) -> list[float]:
    """The values of ``name`` whose labels include ``labels``."""
    found = []
    for line in metrics.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            found.append(float(match.group(2)))
    return found


def test_lag_outbox_age_and_handling_time_are_exported(infra, service, unique):  # noqa: F811
    service.wait_for("/readyz", 200)
    patient = f"metrics-{unique}"
    request = valid("ntx.intake.requested.v1", patient, 1)
    asyncio.run(
        produce(
            infra.bootstrap, INTAKE_REQUESTS.name, patient.encode(), json.dumps(request).encode()
        )
    )
    asyncio.run(patient_messages(infra.bootstrap, INTAKE_DECISIONS.name, patient, 1, timeout=90))

    deadline = time.monotonic() + 30
    while True:
        status, text = service.call("/metrics")
        assert status == 200
        handled = sample(text, "ntx_batch_handling_seconds_count", service="intake")
        waited = sample(text, "ntx_outbox_age_seconds_count", service="intake")
        lag = sample(text, "ntx_consumer_lag", service="intake", topic=INTAKE_REQUESTS.name)
        if (handled and handled[0] >= 1 and waited and waited[0] >= 1 and lag) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.5)
    assert handled and handled[0] >= 1, text
    assert waited and waited[0] >= 1, text  # the decision waited in the outbox
    assert lag and all(n >= 0 for n in lag), text
    assert sum(sample(text, "ntx_outbox_age_seconds_bucket", service="intake", le="+Inf")) >= 1
