"""The notifier service on the real broker and database (its runtime fed as a worker
would be) with the real client and a real receiver over loopback HTTP: a request
on the topic becomes a signed webhook and an outcome on ``ntx.deliveries.v1``; a
500 is retried on the schedule and the request delivered once; a repeated request
is one delivery; the acknowledgement call becomes ``alert.acknowledged``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.acknowledging import acknowledge_call
from services.notifier.domain.acknowledgement import new_token
from services.notifier.receiver import WebhookReceiver
from shared.envelope import build
from shared.topics import CLINICAL_EVENTS, DELIVERIES
from tests.integration.harness import patient_messages
from tests.integration.notifier.serving import attempts_recorded, notifier_serving, requested
from tests.unit.notifier.helpers import endpoint, new_secret, request

pytestmark = pytest.mark.infra

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
async def running(infra, unique):
    """A receiver, the notifier on its own schema, and the request sender. Requests
    of other tests on the topic are delivered here too: assertions name their ids."""
    secret = new_secret()
    token, digest = new_token()
    async with WebhookReceiver(secret) as receiver:
        pager = endpoint("pager", url=receiver.url, secret=secret, ack_token_sha256=digest)
        async with notifier_serving(infra, unique, pager, T0) as (harness, send):
            yield receiver, harness, send, token


async def test_a_request_becomes_a_verified_webhook_and_a_delivered_outcome(infra, unique, running):
    receiver, _, send, _ = running
    patient = f"pt-{unique}"
    event = requested(patient, f"a-{unique}", T0)
    await send(event)
    assert await receiver.wait_for(lambda r: event["id"] in r.delivered_ids(), timeout=30)
    [arrival] = [r for r in receiver.received if r.webhook_id == event["id"]]
    assert receiver.rejected == 0  # every signature verified by standardwebhooks
    assert arrival.event["id"] == event["id"] and arrival.event["data"]["alert_id"] == f"a-{unique}"
    [outcome] = await patient_messages(infra.bootstrap, DELIVERIES.name, patient, 1)
    assert outcome["type"] == "ntx.notification.delivered.v1"
    assert outcome["data"] | {"patient_id": None} == {
        "patient_id": None,
        "notification_id": event["id"],
        "alert_id": f"a-{unique}",
        "audience": "care_team",
        "endpoint": "pager",
        "attempts": 1,
        "status": 200,
    }


async def test_a_500_is_retried_and_the_request_delivered_once(infra, unique, running):
    receiver, harness, send, _ = running
    patient = f"pt-{unique}"
    event = requested(patient, f"a-{unique}", T0)
    receiver.answer(500, webhook_id=event["id"])
    await send(event)
    assert await receiver.wait_for(lambda r: r.count(event["id"]) == 1, timeout=30)
    assert event["id"] not in receiver.delivered_ids()
    # the notifier settles the attempt on the clock it reads then: move it only after
    await attempts_recorded(infra, unique, event["id"], 1)
    harness.clock.set(T0 + timedelta(seconds=5))  # the first retry's ceiling
    assert await receiver.wait_for(lambda r: event["id"] in r.delivered_ids(), timeout=30)
    await send(event)  # the same request again: the inbox drops it
    [outcome] = await patient_messages(infra.bootstrap, DELIVERIES.name, patient, 1)
    assert (outcome["data"]["attempts"], outcome["data"]["status"]) == (2, 200)
    assert [r.status for r in receiver.received if r.webhook_id == event["id"]] == [500, 200]


async def test_an_acknowledgement_becomes_alert_acknowledged(infra, unique, running):
    receiver, harness, send, token = running
    patient, alert_id = f"pt-{unique}", f"a-{unique}"
    event = requested(patient, alert_id, T0)
    await send(event)
    assert await receiver.wait_for(lambda r: r.count(event["id"]) == 1, timeout=30)
    runtime, auth = harness.runtime, f"Bearer {token}"
    body = json.dumps({"alert_id": alert_id, "by": "nurse-17"}).encode()
    assert (await acknowledge_call(runtime, "Bearer ntxack_wrong", body))[0] == 401
    status, answer = await acknowledge_call(runtime, auth, b'{"alert_id": "x"}')
    assert (status, answer["field"]) == (400, "by")
    other = json.dumps({"alert_id": "a-other", "by": "nurse-17"}).encode()
    assert (await acknowledge_call(runtime, auth, other))[0] == 404
    status, answer = await acknowledge_call(runtime, auth, body)
    assert status == 202
    [ack] = await patient_messages(infra.bootstrap, CLINICAL_EVENTS.name, patient, 1)
    assert ack["id"] == answer["accepted"] and ack["type"] == "ntx.alert.acknowledged.v1"
    assert ack["data"] == {
        "patient_id": patient,
        "alert": "overdose_risk",
        "alert_id": alert_id,
        "by": "nurse-17",
    }


async def test_with_no_endpoint_for_the_audience_the_failure_is_published(infra, unique, running):
    _, _, send, _ = running
    patient = f"pt-{unique}"
    event = build(
        "ntx.notification.requested.v1",
        request(patient_id=patient, alert_id=f"a-{unique}", audience="patient"),
        source="ntx/alerts",
        time=T0,
    )
    await send(event)
    [outcome] = await patient_messages(infra.bootstrap, DELIVERIES.name, patient, 1)
    assert outcome["type"] == "ntx.notification.failed.v1"
    assert (outcome["data"]["endpoint"], outcome["data"]["status"]) == (None, "no_endpoint")
