"""Hostile messages for tests: one bad message derived from a valid one, by kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.envelope import MAX_MESSAGE_BYTES, build, parse_data
from shared.topics import EVENT_TYPES, event_type
from tests.unit.event_examples import EXAMPLES

NOW = datetime(2026, 10, 1, 14, 0, tzinfo=UTC)  # after every example's recorded time
INBOUND = sorted(t for t, k in EVENT_TYPES.items() if k.source == "health_system")


def valid(type_: str, patient: str, n: int) -> dict:
    data = {**EXAMPLES[type_], "patient_id": patient}
    model = parse_data(event_type(type_), data)
    return build(type_, model, source="test/hostile", time=NOW, id_=f"{patient}-{n}")


def hostile(type_: str, patient: str, n: int, mutation) -> tuple[bytes | None, bytes]:
    """(key, value) of one bad message derived from a valid one."""
    kind, arg = mutation[0], mutation[1:]
    msg = valid(type_, patient, n)
    key: bytes | None = patient.encode()
    if kind == "truncated":
        return key, json.dumps(msg).encode()[: arg[0]]
    if kind == "wrong_type":
        field, value = arg
        if _json_kind(value) == _json_kind(msg["data"][field]):
            value = "x" if _json_kind(value) != "str" else 123  # always a different type
        msg["data"][field] = value
    elif kind == "unknown_type":
        msg["type"] = arg[0]
    elif kind == "unknown_field":
        msg["data"]["x_" + arg[0]] = 1
    elif kind == "wrong_key":
        key = b"someone-else"
    elif kind == "missing_key":
        key = None
    elif kind == "oversize":
        msg["data"]["padding"] = "x" * MAX_MESSAGE_BYTES
    elif kind == "garbage":
        return key, b"\xff" + arg[0]
    elif kind == "far_future":
        recorded = next(
            (f for f in ("administered_at", "collected_at", "stopped_at") if f in msg["data"]), None
        )
        if recorded is None:  # no recorded time: a date field far in the future instead
            msg["data"]["patient_id"] = "not a valid id!"
        else:
            msg["data"][recorded] = "2099-01-01T00:00:00Z"
    elif kind == "reused_id":
        msg["id"] = f"{patient}-0"  # the good message's id, with another body
        msg["time"] = "2026-10-01T13:59:00Z"
    return key, json.dumps(msg).encode()


#: Mutations that spoil the envelope (or the key): every consumer of the topic refuses
#: them. The others spoil ``data``, which only the services acting on the type judge.
ENVELOPE_LEVEL = frozenset(
    {"truncated", "unknown_type", "wrong_key", "missing_key", "oversize", "garbage"}
)


def refused_by(spec, type_: str, mutation: tuple) -> bool:
    """Whether the service of ``spec`` dead-letters this hostile message."""
    acts = spec.handles is None or type_ in spec.handles
    return mutation[0] in ENVELOPE_LEVEL or acts


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
    return [
        ("truncated", 30),
        ("wrong_type", field, 123),
        ("unknown_type", "ntx.x.v9"),
        ("unknown_field", "abc"),
        ("wrong_key", None),
        ("missing_key", None),
        ("oversize", None),
        ("garbage", b"\x00junk"),
        ("far_future", None),
    ]
