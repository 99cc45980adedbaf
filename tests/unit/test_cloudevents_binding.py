"""The CloudEvents attributes and Kafka binding (DESIGN.md §3 [r2]): optional and
extension attributes accepted and carried, structured-mode headers out, both modes in,
and a type a service ignores skipped by its ``ntx-type`` header alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from shared.envelope import parse, schema_uri
from shared.ingress import Admitted, Message, Refused, admit, as_structured, content_digest
from shared.kafka_binding import STRUCTURED_CONTENT_TYPE, headers_for, inbound
from tests.unit.test_events import message, raw

SCHEMAS = Path(__file__).parents[2] / "docs" / "schemas"
NOW = datetime(2026, 3, 2, 15, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
REQUEST = "ntx.intake.requested.v1"
CLINICAL = "ntx.clinical.events.v1"
#: What an SDK adds to an event: every one is allowed (DESIGN.md §3 [r2]).
STANDARD = {
    "dataschema": {"dataschema": "https://example.org/schemas/intake.json"},
    "traceparent": {"traceparent": TRACEPARENT, "tracestate": "vendor=opaque"},
    "charset": {"datacontenttype": "application/json; charset=utf-8"},
    "other extension": {"partitionkey": "pt-0042", "sequence": 7, "sampled": True},
}


@pytest.mark.parametrize("added", STANDARD.values(), ids=STANDARD.keys())
def test_standard_attributes_are_accepted_carried_and_published(added):
    msg = {**message(REQUEST), **added}
    envelope = parse(raw(msg)).envelope
    dumped = envelope.model_dump(mode="json", exclude_none=True)
    assert {k: dumped[k] for k in added} == added
    jsonschema.validate(msg, json.loads((SCHEMAS / f"{REQUEST}.json").read_text()))


def test_emitted_events_name_their_published_schema():
    msg = message("ntx.dose.due.v1")
    assert msg["dataschema"] == schema_uri("ntx.dose.due.v1")
    assert msg["dataschema"] == json.loads((SCHEMAS / "ntx.dose.due.v1.json").read_text())["$id"]


def test_published_schema_refuses_what_the_envelope_refuses():
    schema = json.loads((SCHEMAS / f"{REQUEST}.json").read_text())
    for bad in ({"Bad_Name": 1}, {"vendor": {"a": 1}}, {"datacontenttype": "text/plain"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**message(REQUEST), **bad}, schema)


def test_a_cloudevent_leaves_in_structured_mode_with_its_type_and_trace():
    value = raw({**message("ntx.dose.due.v1"), "traceparent": TRACEPARENT})
    headers = dict(headers_for(value))
    assert headers == {
        "content-type": STRUCTURED_CONTENT_TYPE.encode(),
        "ntx-type": b"ntx.dose.due.v1",
        "traceparent": TRACEPARENT.encode(),
    }
    assert not [h for h in headers if h.startswith("ce_")]


def test_a_dead_letter_is_plain_json_and_unreadable_bytes_get_no_headers():
    assert headers_for(b'{"reason": "x"}') == [("content-type", b"application/json")]
    assert headers_for(b"not json") == [] and headers_for(None) == []


def binary(msg: dict) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """``msg`` as a binary-mode record: ``ce_*`` headers, the data as the value."""
    headers = [("content-type", msg.get("datacontenttype", "application/json").encode())]
    headers += [
        (f"ce_{k}", str(v).encode())
        for k, v in msg.items()
        if k not in ("data", "datacontenttype") and v is not None
    ]
    return json.dumps(msg["data"]).encode(), tuple(headers)


def test_a_binary_mode_record_is_admitted_as_the_event_it_stands_for():
    msg = {**message("ntx.dose.administered.v1"), "traceparent": TRACEPARENT}
    value, headers = binary(msg)
    came = inbound(value, headers)
    assert came.binary and came.declared_type == "ntx.dose.administered.v1"
    checked = admit(Message(CLINICAL, 0, 1, b"pt-0042", value, headers), NOW, lambda t: True)
    assert isinstance(checked, Admitted)
    envelope = checked.event.envelope
    assert (envelope.id, envelope.type, envelope.subject) == (msg["id"], msg["type"], "pt-0042")
    assert envelope.trace_context() == {"traceparent": TRACEPARENT}
    assert checked.event.data.model_dump(mode="json") == msg["data"]


def test_a_binary_mode_record_with_bad_data_is_refused_naming_it():
    _, headers = binary(message("ntx.dose.administered.v1"))
    checked = admit(Message(CLINICAL, 0, 1, b"pt-0042", b"{not json", headers), NOW, _all)
    assert isinstance(checked, Refused) and checked.field == "data"
    bad_header = (("ce_source", b"\xff"), *headers)  # the first of a repeated header counts
    value = b'{"patient_id": "pt-0042"}'
    checked = admit(Message(CLINICAL, 0, 1, b"pt-0042", value, bad_header), NOW, _all)
    assert isinstance(checked, Refused) and checked.field == "header ce_source"


def _all(_: str) -> bool:
    return True


def test_a_type_the_service_ignores_is_skipped_by_its_header_unparsed():
    headers = (("ntx-type", b"ntx.dose.administered.v1"),)
    ignored = admit(
        Message(CLINICAL, 0, 1, b"pt-0042", b"{not parsed", headers), NOW, lambda t: False
    )
    assert ignored is None
    # a type the service acts on, or one not of this topic, is judged in full
    refused = admit(Message(CLINICAL, 0, 1, b"pt-0042", b"{not parsed", headers), NOW, _all)
    assert isinstance(refused, Refused)
    foreign = (("ntx-type", b"ntx.intake.requested.v1"),)
    wrong = admit(Message(CLINICAL, 0, 1, b"pt-0042", b"{x", foreign), NOW, lambda t: False)
    assert isinstance(wrong, Refused)


def test_trace_context_from_headers_is_carried_unless_the_event_has_its_own():
    value = raw(message("ntx.dose.administered.v1"))
    headers = (("traceparent", TRACEPARENT.encode()),)
    checked = admit(Message(CLINICAL, 0, 1, b"pt-0042", value, headers), NOW, _all)
    assert isinstance(checked, Admitted)
    assert checked.event.envelope.trace_context() == {"traceparent": TRACEPARENT}
    own = "00-11111111111111111111111111111111-2222222222222222-01"
    value = raw({**message("ntx.dose.administered.v1"), "traceparent": own})
    checked = admit(Message(CLINICAL, 0, 1, b"pt-0042", value, headers), NOW, _all)
    assert isinstance(checked, Admitted)
    assert checked.event.envelope.trace_context() == {"traceparent": own}


def test_the_same_event_under_another_span_is_a_repeat_not_a_conflict():
    msg = message("ntx.dose.administered.v1")
    first = content_digest(raw({**msg, "traceparent": TRACEPARENT}))
    again = content_digest(raw({**msg, "traceparent": TRACEPARENT.replace("00f0", "1234")}))
    assert first == again
    assert first != content_digest(raw({**msg, "traceparent": TRACEPARENT, "id": "other"}))


def test_a_binary_mode_record_is_dead_lettered_as_one_structured_event():
    """What is stored for `ntx dlq replay` must stand alone: the ce_* headers are not
    kept with a dead letter, so the binary record is rebuilt as the event it carried."""
    msg = message("ntx.dose.administered.v1")
    value, headers = binary(msg)
    record = Message(CLINICAL, 0, 1, b"pt-0042", value, headers)
    stored = as_structured(record)
    assert stored.headers == () and (stored.key, stored.offset) == (b"pt-0042", 1)
    event = parse(stored.value)
    assert (event.envelope.id, event.envelope.type) == (msg["id"], msg["type"])
    assert event.data.model_dump(mode="json") == msg["data"]
    structured = Message(CLINICAL, 0, 2, b"pt-0042", raw(msg), ())
    assert as_structured(structured) is structured
    assert as_structured(Message(CLINICAL, 0, 3, b"pt-0042", None, headers)).value is None
