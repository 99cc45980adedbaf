"""Published contracts: one JSON Schema per event type (the whole CloudEvents
message), generated from the models, and the files under ``docs/`` written from them
(the AsyncAPI document comes from :mod:`shared.asyncapi`).

One dialect throughout: JSON Schema draft-07, the dialect AsyncAPI 3 documents
embed (``application/schema+json;version=draft-07``), so a schema means the same in
its own file and inside the AsyncAPI document. Inbound types (what integrators send)
use the validation schema; outbound types use the serialization schema (what
consumers receive). Output is deterministic, so a test compares it byte for byte
with the committed files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from shared.deadletter import DeadLetter
from shared.envelope import (
    DATACONTENTTYPE_PATTERN,
    EXTENSION_NAME_PATTERN,
    MAX_EXTENSION_CHARS,
    SCHEMA_BASE,
    TYPE_PATTERN,
    URI_PATTERN,
    schema_uri,
)
from shared.topics import EVENT_TYPES, EventType
from shared.types import PATIENT_ID_PATTERN

DLQ_TYPE = "ntx.dlq.v1"
DIALECT = "http://json-schema.org/draft-07/schema#"
#: Where a standalone schema file keeps its shared parts (draft-07's own keyword).
LOCAL_REFS = "#/definitions/{model}"


def inbound(kind: EventType) -> bool:
    return kind.source == "health_system"


def data_schema(kind: EventType, ref_template: str = LOCAL_REFS) -> dict[str, Any]:
    """The ``data`` schema with its shared parts under ``definitions``."""
    mode: Literal["validation", "serialization"] = (
        "validation" if inbound(kind) else "serialization"
    )
    schema = kind.model.model_json_schema(mode=mode, ref_template=ref_template)
    if "$defs" in schema:  # pydantic's name for them (2020-12); draft-07 says definitions
        schema["definitions"] = schema.pop("$defs")
    return schema


def envelope_schema(kind: EventType, ref_template: str = LOCAL_REFS) -> dict[str, Any]:
    """The CloudEvents message of ``kind``; shared parts stay under ``definitions``."""
    data = data_schema(kind, ref_template)
    defs = data.pop("definitions", {})
    schema: dict[str, Any] = {
        "title": kind.type,
        "description": f"CloudEvents 1.0 message of type {kind.type} on {kind.topic.name}, keyed by patient_id.",
        "type": "object",
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            "data",
        ],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 128,
                "description": "UUID; source+id is the idempotency key",
            },
            "source": {"type": "string", "minLength": 1, "maxLength": 256},
            "type": {"const": kind.type, "pattern": TYPE_PATTERN},
            "time": {"type": "string", "format": "date-time", "description": "UTC, RFC 3339"},
            "subject": {
                "type": "string",
                "pattern": PATIENT_ID_PATTERN,
                "description": "= data.patient_id",
            },
            "datacontenttype": {
                "type": "string",
                "pattern": DATACONTENTTYPE_PATTERN,
                "description": "application/json, with parameters such as charset=utf-8",
            },
            "dataschema": {
                "type": "string",
                "format": "uri",
                "pattern": URI_PATTERN,
                "maxLength": 512,
                "description": f"NTX sends {schema_uri(kind.type)}",
            },
            "correlationid": {"type": ["string", "null"], "maxLength": 128},
            "causationid": {"type": ["string", "null"], "maxLength": 128},
            "traceparent": {
                "type": "string",
                "description": "W3C trace context of the cause, carried to its effects.",
            },
            "tracestate": {"type": "string", "description": "W3C trace context, vendor part."},
            "data": data,
        },
        "propertyNames": {"pattern": EXTENSION_NAME_PATTERN},
        "additionalProperties": {
            "description": "A CloudEvents extension attribute, carried as it came.",
            "type": ["string", "integer", "boolean", "null"],
            "maxLength": MAX_EXTENSION_CHARS,
        },
    }
    if defs:
        schema["definitions"] = defs
    return schema


def dead_letter_schema() -> dict[str, Any]:
    schema = DeadLetter.model_json_schema(mode="serialization", ref_template=LOCAL_REFS)
    return {
        "title": DLQ_TYPE,
        "description": "A refused message: the original bytes (base64) and the reason naming the field.",
        **{k: v for k, v in schema.items() if k not in ("title", "$defs")},
    }


def standalone(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A schema as its own published file: dialect and id first."""
    return {"$schema": DIALECT, "$id": f"{SCHEMA_BASE}{name}.json", **schema}


def all_schemas() -> dict[str, dict[str, Any]]:
    found = {
        name: standalone(name, envelope_schema(kind)) for name, kind in sorted(EVENT_TYPES.items())
    }
    found[DLQ_TYPE] = standalone(DLQ_TYPE, dead_letter_schema())
    return found


def render() -> dict[str, str]:
    """Relative path -> file text, for writing and for the sync test."""
    from shared.asyncapi import asyncapi

    files = {
        f"schemas/{name}.json": json.dumps(s, indent=2, sort_keys=True) + "\n"
        for name, s in all_schemas().items()
    }
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=True, width=100)
    return files


def write_schemas(out_dir: Path) -> list[Path]:
    written = []
    for relative, text in render().items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
