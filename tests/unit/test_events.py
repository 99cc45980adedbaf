"""Event contracts (DESIGN.md §3): every type round-trips; bad input names its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from shared.envelope import MAX_MESSAGE_BYTES, InvalidEvent, build, parse, parse_data
from shared.topics import EVENT_TYPES, event_type
from tests.unit.event_examples import EXAMPLES, P

SCHEMAS = Path(__file__).parents[2] / "docs" / "schemas"


def message(type_: str, data: dict | None = None) -> dict:
    kind = event_type(type_)
    model = parse_data(kind, data if data is not None else EXAMPLES[type_])
    return build(type_, model, source="test/hs", time=datetime(2026, 3, 2, 14, tzinfo=UTC))


def raw(msg: dict) -> bytes:
    return json.dumps(msg).encode()


def test_every_event_type_has_an_example():
    assert set(EXAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_round_trip(type_):
    msg = message(type_)
    event = parse(raw(msg), expected_topic=event_type(type_).topic.name, key=P.encode())
    assert event.data.model_dump(mode="json") == msg["data"]
    again = parse(raw(json.loads(json.dumps(msg))))
    assert again.data == event.data and again.envelope.id == msg["id"]


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_messages_match_their_published_schema(type_):
    schema = json.loads((SCHEMAS / f"{type_}.json").read_text())
    jsonschema.validate(message(type_), schema)


def mutate(type_: str, change) -> bytes:
    msg = message(type_)
    change(msg)
    return raw(msg)


CASES = [
    (
        "unknown data field",
        mutate("ntx.dose.administered.v1", lambda m: m["data"].update(route="iv")),
        "data.route",
    ),
    (
        "envelope field that is no valid extension name",
        mutate("ntx.dose.administered.v1", lambda m: m.update(extra_field=1)),
        "extra_field",
    ),
    (
        "extension that is an object",
        mutate("ntx.dose.administered.v1", lambda m: m.update(vendor={"a": 1})),
        "vendor",
    ),
    (
        "datacontenttype other than JSON",
        mutate("ntx.dose.administered.v1", lambda m: m.update(datacontenttype="text/plain")),
        "datacontenttype",
    ),
    (
        "JSON in a charset other than UTF-8",
        mutate(
            "ntx.dose.administered.v1",
            lambda m: m.update(datacontenttype="application/json; charset=iso-8859-1"),
        ),
        "datacontenttype",
    ),
    (
        "dataschema that is not a URI",
        mutate("ntx.dose.administered.v1", lambda m: m.update(dataschema="no scheme")),
        "dataschema",
    ),
    (
        "bad time zone",
        mutate("ntx.plan.created.v1", lambda m: m["data"].update(timezone="Mars/Base")),
        "data.timezone",
    ),
    (
        "impossible date",
        mutate("ntx.procedure.scheduled.v1", lambda m: m["data"].update(date="2026-02-30")),
        "data.date",
    ),
    (
        "string for bool",
        mutate("ntx.uds.resulted.v1", lambda m: m["data"].update(opioids_detected="no")),
        "data.opioids_detected",
    ),
    (
        "string for int",
        mutate("ntx.dose.administered.v1", lambda m: m["data"].update(dose_mg="50")),
        "data.dose_mg",
    ),
    (
        "bad patient id",
        mutate(
            "ntx.dose.administered.v1",
            lambda m: (m["data"].update(patient_id="Jane Doe"), m.update(subject="Jane Doe")),
        ),
        "subject",
    ),
    (
        "subject differs",
        mutate("ntx.dose.administered.v1", lambda m: m.update(subject="pt-other")),
        "subject",
    ),
    (
        "unknown type",
        mutate("ntx.dose.administered.v1", lambda m: m.update(type="ntx.dose.teleported.v1")),
        "type",
    ),
    (
        "naive datetime",
        mutate(
            "ntx.dose.administered.v1",
            lambda m: m["data"].update(administered_at="2026-03-02T13:40:00"),
        ),
        "data.administered_at",
    ),
    (
        "oral fields with xr",
        mutate("ntx.plan.created.v1", lambda m: m["data"].update(formulation="xr")),
        "data",
    ),
    (
        "induction 4",
        mutate("ntx.intake.requested.v1", lambda m: m["data"].update(induction_days=4)),
        "data.induction_days",
    ),
    (
        "dose time 24:00",
        mutate("ntx.intake.requested.v1", lambda m: m["data"].update(dose_time="24:00")),
        "data.dose_time",
    ),
    (
        "unknown condition",
        mutate("ntx.intake.requested.v1", lambda m: m["data"].update(conditions=["flu"])),
        "data.conditions.0",
    ),
    (
        "wrong spec version",
        mutate("ntx.dose.administered.v1", lambda m: m.update(specversion="0.3")),
        "specversion",
    ),
    (
        "missing data field",
        mutate("ntx.dose.administered.v1", lambda m: m["data"].pop("dose_mg")),
        "data.dose_mg",
    ),
    ("truncated json", raw(message("ntx.dose.administered.v1"))[:40], "json_invalid"),
    ("non-object json", b"[1, 2, 3]", "model_type"),
]


@pytest.mark.parametrize("name, body, field", CASES, ids=[c[0] for c in CASES])
def test_invalid_messages_name_the_field(name, body, field):
    with pytest.raises(InvalidEvent) as err:
        parse(body)
    if field in ("json_invalid", "model_type"):
        assert err.value.field  # the parser names the position or the root
    else:
        assert err.value.field == field or err.value.field.startswith(field), err.value


def test_wrong_topic_and_wrong_key_are_refused():
    body = raw(message("ntx.dose.administered.v1"))
    with pytest.raises(InvalidEvent, match="type"):
        parse(body, expected_topic="ntx.intake.requests.v1")
    with pytest.raises(InvalidEvent, match="key"):
        parse(body, key=b"pt-someone-else")


def test_oversize_message_is_refused_unread():
    with pytest.raises(InvalidEvent) as err:
        parse(b"{" + b" " * MAX_MESSAGE_BYTES + b"}")
    assert err.value.field == "message"


def test_times_come_out_in_utc_with_z_and_decimals_exact():
    event = parse(
        mutate(
            "ntx.dose.administered.v1",
            lambda m: m["data"].update(administered_at="2026-03-02T14:40:00+01:00"),
        )
    )
    assert event.data.model_dump(mode="json")["administered_at"] == "2026-03-02T13:40:00Z"
    lab = parse(raw(message("ntx.lab.resulted.v1"))).data
    assert lab.alt == Decimal("120.3") and lab.alt / lab.alt_uln == Decimal(3)


def test_cross_field_errors_name_their_field():
    body = mutate("ntx.plan.created.v1", lambda m: m["data"].update(formulation="xr"))
    with pytest.raises(InvalidEvent) as err:
        parse(body)
    assert err.value.field == "data.oral_regimen"
