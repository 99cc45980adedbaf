"""Hostile messages for tests: one bad message derived from a valid one, by kind.

Each kind is something a sender (or an attacker on the broker) can put in a Kafka
record that must become a dead letter naming the field, without stopping anything:
broken or non-JSON bytes, a null value (tombstone), NUL characters in the key, the id,
the source or the data, unpaired surrogates, deep nesting, oversize messages, times
from the future or before year 1 in UTC, implausible dates and absurd numbers.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from services.bootstrap import SERVICES, load_spec
from shared.envelope import MAX_MESSAGE_BYTES, build, parse_data
from shared.topics import EVENT_TYPES, event_type
from tests.unit.event_examples import EXAMPLES

NOW = datetime(2026, 10, 1, 14, 0, tzinfo=UTC)  # after every example's recorded time
INBOUND = sorted(t for t, k in EVENT_TYPES.items() if k.source == "health_system")
#: Every type some service consumes: the health system's, and the decisions and
#: schedule other services publish (a forged one arrives on the same topics).
CONSUMED = sorted(
    t
    for t, k in EVENT_TYPES.items()
    if k.topic.name in {topic.name for name in SERVICES for topic in load_spec(name).topics}
)


def valid(type_: str, patient: str, n: int, now: datetime = NOW) -> dict:
    data = {**EXAMPLES[type_], "patient_id": patient}
    model = parse_data(event_type(type_), data)
    return build(type_, model, source="test/hostile", time=now, id_=f"{patient}-{n}")


def hostile(
    type_: str, patient: str, n: int, mutation, now: datetime = NOW
) -> tuple[bytes | None, bytes | None]:
    """(key, value) of one bad message derived from a valid one."""
    kind, arg = mutation[0], mutation[1:]
    msg = valid(type_, patient, n, now)
    key: bytes | None = patient.encode()
    data = msg["data"]
    if kind == "truncated":
        return key, json.dumps(msg).encode()[: arg[0]]
    if kind == "tombstone":
        return key, None
    if kind == "garbage":
        return key, b"\xff" + arg[0]
    if kind == "wrong_type":
        field, value = arg
        if _json_kind(value) == _json_kind(data[field]):
            value = "x" if _json_kind(value) != "str" else 123  # always a different type
        data[field] = value
    elif kind == "unknown_type":
        msg["type"] = arg[0]
    elif kind == "unknown_field":
        data["x_" + arg[0]] = 1
    elif kind == "wrong_key":
        key = b"someone-else"
    elif kind == "missing_key":
        key = None
    elif kind == "nul_key":
        key = patient.encode() + b"\x00"
    elif kind in ("nul_id", "nul_source"):
        msg[kind[4:]] = f"{msg[kind[4:]]}\u0000"
    elif kind == "nul_data":
        field = _first(data, lambda k, v: isinstance(v, str) and k != "patient_id")
        data[field] = data[field][:4] + "\u0000" + data[field][4:]
    elif kind == "surrogate":
        return key, json.dumps(msg).replace(f'"id": "{msg["id"]}"', '"id": "a\\ud800b"').encode()
    elif kind == "deep":  # made as text: Python's own json would recurse too deep
        data["x"] = "DEEP"
        nested = "[" * arg[0] + "]" * arg[0]
        return key, json.dumps(msg).replace('"x": "DEEP"', f'"x": {nested}').encode()
    elif kind == "oversize":
        data["padding"] = "x" * (arg[0] if arg and arg[0] else MAX_MESSAGE_BYTES)
    elif kind == "future_time":
        msg["time"] = "9999-12-31T23:59:59Z"
    elif kind == "year_one_time":
        msg["time"] = "0001-01-01T00:30:00+01:00"  # before year 1 once in UTC
    elif kind == "implausible_date":
        _implausible_date(data)
    elif kind == "huge_number":
        field = _first(data, lambda k, v: _json_kind(v) == "number")
        data[field] = 10**400
    elif kind == "far_future":
        recorded = next(
            (f for f in ("administered_at", "collected_at", "stopped_at") if f in data), None
        )
        if recorded is None:  # no recorded time: a date field far in the future instead
            data["patient_id"] = "not a valid id!"
        else:
            data[recorded] = "2099-01-01T00:00:00Z"
    elif kind == "reused_id":
        msg["id"] = f"{patient}-0"  # the good message's id, with another body
        msg["time"] = "2026-10-01T13:59:00Z"
    return key, json.dumps(msg).encode()


#: Mutations that spoil the envelope, the key or the bytes: every consumer of the topic
#: refuses them. The others spoil ``data``, which only the services acting on the type
#: judge.
ENVELOPE_LEVEL = frozenset(
    {
        "truncated",
        "unknown_type",
        "wrong_key",
        "missing_key",
        "oversize",
        "garbage",
        "tombstone",
        "nul_key",
        "nul_id",
        "nul_source",
        "nul_data",  # unstorable anywhere: refused before the type is looked at
        "surrogate",
        "deep",
        "future_time",
        "year_one_time",
    }
)
#: Mutations whose bad copy is keyed to someone else, or to no one.
OFF_KEY = frozenset({"wrong_key", "missing_key", "nul_key"})


def refused_by(spec, type_: str, mutation: tuple) -> bool:
    """Whether the service of ``spec`` dead-letters this hostile message."""
    acts = spec.handles is None or type_ in spec.handles
    return mutation[0] in ENVELOPE_LEVEL or acts


def applies(type_: str, mutation: tuple) -> bool:
    """Whether the mutation can be made of this type's example (a number to blow up)."""
    example = EXAMPLES[type_]
    if mutation[0] == "huge_number":
        return any(_json_kind(v) == "number" for v in example.values())
    if mutation[0] == "implausible_date":
        dated = any(isinstance(v, str) and _DATE.match(v) for v in example.values())
        return dated or "last_opioid_use" in example
    return True


def _implausible_date(data: dict) -> None:
    """A date outside the plausible window: history in year 1, the forged plan of
    issue 18 starting in 1500, a due time in 9999, a local time in year 1."""
    if "last_opioid_use" in data:
        data["last_opioid_use"]["date"] = "0001-01-01"
    elif data.get("plan"):
        data["plan"]["start_date"] = "1500-01-01"
    else:
        field = _first(data, lambda k, v: isinstance(v, str) and _DATE.match(v))
        value = data[field]
        if len(value) == 10:
            data[field] = "1500-01-01"
        elif value.endswith("Z"):
            data[field] = "9999-12-31T23:59:00Z"
        else:
            data[field] = "0001-01-01T00:00"


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _first(data: dict, wanted) -> str:
    return next(k for k, v in data.items() if wanted(k, v))


def _json_kind(value) -> str:
    """JSON's types: a bool is not a number, and ints and floats are both numbers."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def fixed_mutations(type_: str) -> list[tuple]:
    """One of each kind that can never be valid (no reused ids: in a run without the
    good original, a reused id would simply be a new message)."""
    field = next(k for k in EXAMPLES[type_] if k != "patient_id")
    found = [
        ("truncated", 30),
        ("wrong_type", field, 123),
        ("unknown_type", "ntx.x.v9"),
        ("unknown_field", "abc"),
        ("wrong_key", None),
        ("missing_key", None),
        ("oversize",),
        ("garbage", b"\x00junk"),
        ("far_future", None),
        ("tombstone",),
        ("nul_key",),
        ("nul_id",),
        ("nul_source",),
        ("nul_data",),
        ("surrogate",),
        ("deep", 300),
        ("future_time",),
        ("year_one_time",),
        ("implausible_date",),
        ("huge_number",),
    ]
    return [m for m in found if applies(type_, m)]
