"""Standard CloudEvents clients against the intake worker as operators run it
(``ntx service intake``, faust, the real broker and database; DESIGN.md §3 [r2], §7).

Requests written with the CloudEvents Python SDK (``cloudevents`` 2.x), carrying the
attributes that used to be refused (``dataschema``, the ``traceparent`` extension, a
``datacontenttype`` with ``charset=utf-8``), and one in binary mode, are all decided;
the decisions read back through the SDK's Kafka binding give the same attributes."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaProducer
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat

from shared.envelope import schema_uri
from shared.kafka_binding import STRUCTURED_CONTENT_TYPE
from shared.topics import INTAKE_DECISIONS, INTAKE_REQUESTS
from tests.hostile import valid
from tests.integration.harness import read_topic
from tests.integration.test_worker_process import service  # noqa: F401 - the fixture

pytestmark = pytest.mark.infra

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
#: What SDKs add to a request (DESIGN.md §3 [r2]); each was refused before.
ADDED = {
    "dataschema": {"dataschema": "https://example.org/schemas/intake-request.json"},
    "traceparent": {"traceparent": TRACEPARENT, "tracestate": "vendor=opaque"},
    "charset": {"datacontenttype": "application/json; charset=utf-8"},
    "binary": {"traceparent": TRACEPARENT},
}


def sdk_message(request: dict, *, binary: bool) -> KafkaMessage:
    """``request`` as the CloudEvents SDK writes it to Kafka."""
    attributes = {k: v for k, v in request.items() if v is not None and k != "data"}
    event = JSONFormat().read(None, json.dumps({**attributes, "data": request["data"]}).encode())
    convert = to_binary if binary else to_structured
    return convert(event, JSONFormat(), key_mapper=lambda _: request["subject"])


async def publish(bootstrap: str, messages: list[KafkaMessage]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for m in messages:
            key = m.key.encode() if isinstance(m.key, str) else m.key
            headers = list(m.headers.items())
            await producer.send_and_wait(INTAKE_REQUESTS.name, m.value, key=key, headers=headers)
    finally:
        await producer.stop()


def test_sdk_requests_are_decided_and_decisions_read_back_through_the_sdk(
    infra,
    service,  # noqa: F811 - the fixture
    unique,
):
    service.wait_for("/readyz", 200)
    requests = {
        name: {**valid("ntx.intake.requested.v1", f"ce-{name}-{unique}", 1), **added}
        for name, added in ADDED.items()
    }
    messages = [sdk_message(r, binary=name == "binary") for name, r in requests.items()]
    assert any(h.startswith("ce_") for h in messages[-1].headers)  # binary mode indeed
    asyncio.run(publish(infra.bootstrap, messages))

    patients = {r["subject"].encode(): name for name, r in requests.items()}
    records = asyncio.run(
        read_topic(
            infra.bootstrap,
            INTAKE_DECISIONS.name,
            until=lambda ms: {m.key for m in ms} >= patients.keys(),
            timeout=90,
        )
    )
    decisions = {patients[m.key]: m for m in records if m.key in patients}
    assert decisions.keys() == ADDED.keys(), service.log.read_text()[-3000:]

    for name, record in decisions.items():
        headers = dict(record.headers)
        assert headers["content-type"] == STRUCTURED_CONTENT_TYPE.encode()
        assert not [h for h in headers if h.startswith("ce_")]
        sent = json.loads(record.value)
        assert headers["ntx-type"] == sent["type"].encode()
        event = from_kafka(KafkaMessage(headers, record.key, record.value), JSONFormat())
        got = event.get_attributes()
        for attribute in ("specversion", "id", "source", "type", "subject", "dataschema"):
            assert got[attribute] == sent[attribute], (name, attribute)
        assert got["time"].isoformat().replace("+00:00", "Z") == sent["time"]
        assert got["causationid"] == requests[name]["id"]
        assert got["dataschema"] == schema_uri(sent["type"])
        assert event.get_data() == sent["data"]
        if "traceparent" in ADDED[name]:
            # the same trace, the decision's own span
            _, trace_id, span_id, _ = got["traceparent"].split("-")
            assert trace_id == TRACE_ID and span_id != TRACEPARENT.split("-")[2]
            assert headers["traceparent"] == got["traceparent"].encode()
    assert "Traceback" not in service.log.read_text()
