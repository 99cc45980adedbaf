"""The CloudEvents Kafka protocol binding (DESIGN.md §3 [r2]), both ways.

Out, every record is structured mode: the value is the whole CloudEvent, announced
by ``content-type: application/cloudevents+json; charset=UTF-8``, with ``ntx-type``
(the event type, to route or skip a record unparsed) and the W3C trace context as
headers (:func:`headers_for`). No ``ce_*`` header is ever sent: SDK consumers read any
record with one as binary mode.

In, a record is binary mode when its ``content-type`` is not a CloudEvents one and it
has a ``ce_specversion`` header: the attributes are ``ce_*`` headers and the value is
the data. :func:`inbound` turns it into the structured bytes every other check reads,
so the door judges both modes alike. A record with no headers at all is structured
(what NTX and its integrators sent before the binding was followed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.envelope import MAX_MESSAGE_BYTES, TRACE_ATTRIBUTES, InvalidEvent

#: The structured-mode content type (CloudEvents Kafka binding §3.2, DESIGN.md §3).
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
#: The header naming the event type, so a consumer can route or skip a record unparsed.
TYPE_HEADER = "ntx-type"
#: What a value that is not a CloudEvent (a dead letter on ``ntx.dlq.v1``) is.
PLAIN_JSON = "application/json"
#: Binary mode: each attribute is a header with this prefix (binding §3.2.3).
ATTRIBUTE_PREFIX = "ce_"

Headers = list[tuple[str, bytes]]


def headers_for(value: bytes | None) -> Headers:
    """The record headers of ``value``: structured mode, the type and W3C trace
    context for a CloudEvent; ``application/json`` for anything else NTX publishes
    (dead letters); none for a null value or bytes that are not JSON (``ntx send
    --unchecked`` sends such on purpose). Derived from the value when it is sent, so
    an outbox row needs no column of its own and rows written before headers existed
    leave with them too."""
    if value is None:
        return []
    try:
        event = json.loads(value)
    except ValueError:
        return []
    if not isinstance(event, dict) or "specversion" not in event:
        return [("content-type", PLAIN_JSON.encode())]
    headers = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
    for name, attribute in ((TYPE_HEADER, "type"), *((t, t) for t in TRACE_ATTRIBUTES)):
        if isinstance(event.get(attribute), str):
            headers.append((name, event[attribute].encode("utf-8", "replace")))
    return headers


@dataclass(frozen=True)
class Inbound:
    """A record's value as a structured CloudEvent, and what its headers said."""

    value: bytes
    #: The event type a header names (``ntx-type``, or ``ce_type`` in binary mode).
    declared_type: str | None = None
    #: W3C trace context from the headers (the event's own extensions take precedence).
    trace: dict[str, str] = field(default_factory=dict)
    binary: bool = False


def inbound(value: bytes, headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes]) -> Inbound:
    """``value`` in structured form, whichever mode it came in; raises
    :class:`InvalidEvent` naming the header or ``data`` at fault."""
    named = _decoded(headers)
    trace = {k: named[k] for k in TRACE_ATTRIBUTES if k in named}
    content_type = named.get("content-type", "")
    is_binary = f"{ATTRIBUTE_PREFIX}specversion" in named and not content_type.lower().startswith(
        "application/cloudevents"
    )
    declared = named.get(TYPE_HEADER) or (named.get("ce_type") if is_binary else None)
    if not is_binary:
        return Inbound(value, declared, trace)
    return Inbound(_structured(value, named), declared, trace, binary=True)


def _decoded(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes]) -> dict[str, str]:
    """Header names lower-cased, values as UTF-8 text (the binding's encoding); the
    first of a repeated header wins."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, raw in pairs:
        key = name.lower()
        if key in out or raw is None:
            continue
        try:
            out[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            if key.startswith(ATTRIBUTE_PREFIX) or key in (TYPE_HEADER, "content-type"):
                raise InvalidEvent(f"header {key}", "not UTF-8 text") from None
    return out


def _structured(data: bytes, named: dict[str, str]) -> bytes:
    """The binary-mode record as the structured CloudEvent it stands for."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("message", f"larger than {MAX_MESSAGE_BYTES} bytes")
    event: dict[str, Any] = {
        key.removeprefix(ATTRIBUTE_PREFIX): text
        for key, text in named.items()
        if key.startswith(ATTRIBUTE_PREFIX)
    }
    if "data" in event or "data_base64" in event:
        raise InvalidEvent("header ce_data", "the data is the record's value, not a header")
    if "content-type" in named:
        event["datacontenttype"] = named["content-type"]
    try:
        event["data"] = json.loads(data)
    except RecursionError:
        raise InvalidEvent("data", "nested too deeply") from None
    except ValueError:
        raise InvalidEvent("data", "the value of a binary-mode record must be JSON") from None
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
