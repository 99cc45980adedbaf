"""One way to turn an envelope into a Kafka record and to send records with one
producer (shared/records.py): the outbox, ``ntx send`` and the cluster driver share it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from shared.envelope import build
from shared.events import DoseAdministered
from shared.records import record, send_all, send_each


def test_an_envelope_goes_to_its_types_topic_keyed_by_the_patient():
    data = DoseAdministered(
        patient_id="p-1", administered_at=datetime(2026, 1, 5, 7, tzinfo=UTC), dose_mg=50
    )
    envelope = build(
        "ntx.dose.administered.v1", data, source="t", time=datetime(2026, 1, 5, tzinfo=UTC)
    )
    topic, key, value = record(envelope)
    assert (topic, key) == ("ntx.clinical.events.v1", "p-1")
    assert json.loads(value) == envelope and record(envelope)[2] == value  # stable bytes


class Producer:
    """Refuses oversize records before sending; fails the acknowledgement of others
    as told; keeps what it was given, in order."""

    def __init__(self, fail_ack: set[bytes] = frozenset()):
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.fail_ack = fail_ack

    async def send(self, topic: str, value: bytes, key: bytes | None = None, headers=None):
        if len(value) > 10:
            raise MessageSizeTooLargeError()
        self.sent.append((topic, key, value))
        ack: asyncio.Future = asyncio.get_running_loop().create_future()
        if value in self.fail_ack:
            ack.set_exception(KafkaTimeoutError())
        else:
            ack.set_result("ok")
        return ack


async def test_each_record_gets_its_own_outcome_in_order():
    producer = Producer(fail_ack={b"late"})
    outcomes = await send_each(
        producer, [("t", "p", b"a"), ("t", b"raw", b"x" * 11), ("t", None, b"late")]
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], MessageSizeTooLargeError)  # refused alone
    assert isinstance(outcomes[2], KafkaTimeoutError)
    assert producer.sent == [("t", b"p", b"a"), ("t", None, b"late")]  # keys as bytes


async def test_send_all_raises_the_first_failure_once_all_are_settled():
    producer = Producer(fail_ack={b"b"})
    with pytest.raises(KafkaTimeoutError):
        await send_all(producer, [("t", "p", b"a"), ("t", "p", b"b"), ("t", "p", b"c")])
    assert [v for _, _, v in producer.sent] == [b"a", b"b", b"c"]
    await send_all(producer, [("t", "p", b"d")])  # nothing failing: nothing raised
