"""CloudEvents 1.0 envelope (DESIGN.md §3, normative): parse, validate, build.

Every inbound message goes through :func:`parse`; anything it rejects raises
:class:`InvalidEvent` with the offending field named, for the dead-letter topic.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.ids import stable_id as stable_id  # re-exported: its callers outside the domain
from shared.topics import EventType, event_type
from shared.types import PATIENT_ID_PATTERN, PlausibleUtcDateTime, format_utc

#: Larger messages are rejected unread: a clinical event is a few hundred bytes.
MAX_MESSAGE_BYTES = 64 * 1024

TYPE_PATTERN = r"^ntx\.[a-z_]+(\.[a-z_]+)*\.v[0-9]+$"

#: Where every type's published JSON Schema lives; emitted events name theirs in
#: ``dataschema`` (DESIGN.md §3 [r2]). The same URI is the schema file's ``$id``.
SCHEMA_BASE = "https://ntx.example/schemas/"

#: DESIGN.md §3 [r2]: ``application/json``, with parameters such as ``charset=utf-8``
#: (media types compare case-insensitively, RFC 9110 §8.3.1).
DATACONTENTTYPE_PATTERN = (
    r"^[Aa][Pp][Pp][Ll][Ii][Cc][Aa][Tt][Ii][Oo][Nn]/[Jj][Ss][Oo][Nn]"
    r"""([ \t]*;[ \t]*[A-Za-z0-9!#$&^_.+-]+=([A-Za-z0-9!#$&^_.+-]+|"[^"\\]*"))*$"""
)
#: An absolute URI: a scheme, then anything printable (RFC 3986 §3.1).
URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$"
#: CloudEvents 1.0 §3.1.1 and DESIGN.md §3: extension names are lower-case letters and
#: digits, at most 20 of them.
EXTENSION_NAME_PATTERN = r"^[a-z0-9]{1,20}$"
_EXTENSION_NAME = re.compile(EXTENSION_NAME_PATTERN)
_DATACONTENTTYPE = re.compile(DATACONTENTTYPE_PATTERN)
#: Bounds on what a sender may attach (a clinical event needs none): enough for W3C
#: trace context (``tracestate`` is at most 512 characters) and a few vendors' own.
MAX_EXTENSIONS = 16
MAX_EXTENSION_CHARS = 1024
#: W3C trace context rides as these extensions (and Kafka headers of the same name).
TRACE_ATTRIBUTES = ("traceparent", "tracestate")


def schema_uri(type_: str) -> str:
    """The published JSON Schema of an event type (``docs/schemas/<type>.json``)."""
    return f"{SCHEMA_BASE}{type_}.json"


class InvalidEvent(ValueError):
    """An inbound message that cannot be accepted; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Envelope(BaseModel):
    """The CloudEvents attributes NTX knows, and any extension attribute carried as
    it came (``model_extra``): a CloudEvents SDK adds them freely."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256)
    type: str = Field(pattern=TYPE_PATTERN, max_length=128)
    time: PlausibleUtcDateTime
    subject: str = Field(pattern=PATIENT_ID_PATTERN)
    datacontenttype: str = Field(default="application/json", max_length=128)
    dataschema: str | None = Field(default=None, pattern=URI_PATTERN, max_length=512)
    data: dict[str, Any]
    correlationid: str | None = Field(default=None, max_length=128)
    causationid: str | None = Field(default=None, max_length=128)

    @field_validator("datacontenttype")
    @classmethod
    def _utf8_only(cls, value: str) -> str:
        """JSON, whatever its parameters; and JSON is UTF-8 (RFC 8259 §8.1): another
        charset would mean other bytes."""
        if not _DATACONTENTTYPE.match(value):
            raise ValueError("must be application/json, with parameters such as charset=utf-8")
        for param in value.split(";")[1:]:
            name, _, given = param.strip().partition("=")
            if name.lower() == "charset" and given.strip('"').lower() not in ("utf-8", "utf8"):
                raise ValueError("charset must be utf-8 (JSON is UTF-8)")
        return value

    @model_validator(mode="after")
    def _extensions(self) -> Envelope:
        """Extension attributes: a valid name, a string, integer or boolean value."""
        extra = self.model_extra or {}
        if len(extra) > MAX_EXTENSIONS:
            raise ValueError(f"message: more than {MAX_EXTENSIONS} extension attributes")
        for name, value in extra.items():
            if not _EXTENSION_NAME.match(name):
                raise InvalidEvent(
                    name[:40],
                    "unknown attribute; extension names are 1-20"
                    " lower-case letters and digits (CloudEvents 1.0)",
                )
            if not _extension_value(value):
                raise ValueError(
                    f"{name}: an extension is a string (at most {MAX_EXTENSION_CHARS}"
                    " characters), an integer or a boolean"
                )
        return self

    @property
    def extensions(self) -> dict[str, Any]:
        """The extension attributes beyond NTX's own, as they came (nulls left out)."""
        return {k: v for k, v in (self.model_extra or {}).items() if v is not None}

    def trace_context(self) -> dict[str, str]:
        """W3C trace context carried as extensions (``traceparent``, ``tracestate``)."""
        ext = self.extensions
        return {k: ext[k] for k in TRACE_ATTRIBUTES if isinstance(ext.get(k), str)}


def _extension_value(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_EXTENSION_CHARS
    # JSON null: the attribute is absent; bool is an int, both allowed
    return value is None or (isinstance(value, int) and abs(value) < 2**31)


class Event(BaseModel):
    """A validated envelope with its typed data."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    envelope: Envelope
    data: BaseModel

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def patient_id(self) -> str:
        return self.envelope.subject


def first_error(exc: ValidationError, prefix: str = "") -> InvalidEvent:
    """The first pydantic error as an :class:`InvalidEvent` naming the field path."""
    return all_errors(exc, prefix)[0]


def all_errors(exc: ValidationError, prefix: str = "") -> list[InvalidEvent]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        named = _CROSS_FIELD.match(msg) if not loc else None
        raised = err.get("ctx", {}).get("error")
        if isinstance(raised, InvalidEvent) and not loc:  # names any field, even odd ones
            loc, msg = raised.field, raised.message
        elif named:  # a model-level check names its field in the message
            loc, msg = named.group(1), named.group(2)
        if err["type"] == "json_invalid":  # the bytes are not JSON: no field is at fault
            field = "message"
        else:
            field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "data")
        out.append(InvalidEvent(field, msg))
    return out


_CROSS_FIELD = re.compile(r"^([a-z0-9_]+): (.+)$")


def parse_data(kind: EventType, data: dict[str, Any] | bytes | str) -> BaseModel:
    raw = data if isinstance(data, bytes | str) else json.dumps(data)
    try:
        return kind.model.model_validate_json(raw)
    except ValidationError as exc:
        raise first_error(exc, "data") from None


def parse(
    raw: bytes,
    *,
    expected_topic: str | None = None,
    key: bytes | None = None,
    require_key: bool = False,
) -> Event:
    """Bytes off the wire to a typed event, or :class:`InvalidEvent`."""
    return typed(
        parse_envelope(raw, expected_topic=expected_topic, key=key, require_key=require_key)
    )


def parse_envelope(
    raw: bytes,
    *,
    expected_topic: str | None = None,
    key: bytes | None = None,
    require_key: bool = False,
) -> Envelope:
    """The envelope checked (size, fields, a known type on its topic, the key), its
    ``data`` not yet: a consumer that ignores the type need not judge its body."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("message", f"larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        envelope = Envelope.model_validate_json(raw)
    except ValidationError as exc:
        raise first_error(exc) from None
    if _MAYBE_UNSTORABLE.search(raw):
        refuse_unstorable(envelope.model_dump(exclude_none=True))
    try:
        kind = event_type(envelope.type)
    except KeyError:
        raise InvalidEvent("type", f"unknown event type {envelope.type!r}") from None
    if expected_topic is not None and kind.topic.name != expected_topic:
        raise InvalidEvent("type", f"{envelope.type} does not belong on {expected_topic}")
    if require_key and key is None:
        raise InvalidEvent("key", "required: the patient_id")
    if key is not None and key.decode("utf-8", "replace") != envelope.subject:
        raise InvalidEvent("key", "Kafka key must equal the patient_id")
    return envelope


#: Characters no PostgreSQL text or jsonb value can hold (NUL) or no UTF-8 encoder
#: will write (unpaired surrogates): refused by name before any statement meets them.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Their JSON escapes: a message without any needs no walk (raw NULs and invalid
#: UTF-8 are not JSON at all, so the parser refuses them).
_MAYBE_UNSTORABLE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


def refuse_unstorable(value: Any, path: str = "") -> None:
    """Raise :class:`InvalidEvent` naming the first key or string in ``value`` that
    holds a NUL or an unpaired surrogate."""
    todo: list[tuple[str, Any]] = [(path, value)]
    while todo:
        where, item = todo.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise InvalidEvent(where or "message", "contains NUL or an unpaired surrogate")
        elif isinstance(item, dict):
            for key, inner in item.items():
                inner_path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    raise InvalidEvent(
                        where or "message", "a field name contains NUL or an unpaired surrogate"
                    )
                todo.append((inner_path, inner))
        elif isinstance(item, list):
            todo.extend((f"{where}.{n}", inner) for n, inner in enumerate(item))


def typed(envelope: Envelope) -> Event:
    """The envelope with its ``data`` validated against the type's model."""
    data = parse_data(event_type(envelope.type), envelope.data)
    if getattr(data, "patient_id", None) != envelope.subject:
        raise InvalidEvent("subject", "must equal data.patient_id")
    return Event(envelope=envelope, data=data)


def build(
    type_: str,
    data: BaseModel | dict[str, Any],
    *,
    source: str,
    time: datetime,
    correlationid: str | None = None,
    causationid: str | None = None,
    id_: str | None = None,
    trace: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A CloudEvents JSON object (as a dict) for ``data``; validates the type exists.
    ``data`` is a model, or the JSON form of one that was validated when stored.
    ``trace`` is the W3C trace context the event carries as extensions."""
    event_type(type_)
    body = data if isinstance(data, dict) else data.model_dump(mode="json")
    return {
        "specversion": "1.0",
        "id": id_ or str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "time": format_utc(time),
        "subject": body["patient_id"],
        "datacontenttype": "application/json",
        "dataschema": schema_uri(type_),
        "data": body,
        "correlationid": correlationid,
        "causationid": causationid,
        **(trace or {}),
    }
