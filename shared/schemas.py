"""Published contracts: one JSON Schema per event type (the whole CloudEvents
message) and an AsyncAPI 3.0 document of every topic, generated from the models.

Inbound types (what integrators send) use the validation schema; outbound types use
the serialization schema (what consumers receive). Output is deterministic, so a test
can compare it byte for byte with the committed files under ``docs/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from shared.deadletter import DeadLetter
from shared.envelope import TYPE_PATTERN
from shared.topics import ALL_TOPICS, DLQ, EVENT_TYPES, EventType
from shared.types import PATIENT_ID_PATTERN

SCHEMA_BASE = "https://ntx.example/schemas/"
DLQ_TYPE = "ntx.dlq.v1"


def _inbound(kind: EventType) -> bool:
    return kind.source == "health_system"


def data_schema(kind: EventType) -> dict[str, Any]:
    mode: Literal["validation", "serialization"] = (
        "validation" if _inbound(kind) else "serialization"
    )
    return kind.model.model_json_schema(mode=mode, ref_template="#/$defs/{model}")


def envelope_schema(kind: EventType) -> dict[str, Any]:
    data = data_schema(kind)
    defs = data.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}{kind.type}.json",
        "title": kind.type,
        "description": f"CloudEvents 1.0 message of type {kind.type} on {kind.topic.name}, keyed by patient_id.",
        "type": "object",
        "additionalProperties": False,
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
            "datacontenttype": {"const": "application/json"},
            "correlationid": {"type": ["string", "null"], "maxLength": 128},
            "causationid": {"type": ["string", "null"], "maxLength": 128},
            "data": data,
        },
    }
    if defs:
        schema["$defs"] = defs
    return schema


def dead_letter_schema() -> dict[str, Any]:
    schema = DeadLetter.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}{DLQ_TYPE}.json",
        "title": DLQ_TYPE,
        "description": "A refused message: the original bytes (base64) and the reason naming the field.",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    found = {name: envelope_schema(kind) for name, kind in sorted(EVENT_TYPES.items())}
    found[DLQ_TYPE] = dead_letter_schema()
    return found


def asyncapi() -> dict[str, Any]:
    schemas = all_schemas()
    messages = {_msg(name): _message(name, schemas[name]) for name in sorted(schemas)}
    channels = {}
    operations = {}
    for topic in ALL_TOPICS:
        names = [n for n, k in sorted(EVENT_TYPES.items()) if k.topic is topic]
        if topic is DLQ:
            names = [DLQ_TYPE]
        key = _msg(topic.name)
        channels[key] = {
            "address": topic.name,
            "description": f"{topic.description} Written by {', '.join(topic.producers)}; read by {', '.join(topic.consumers)}.",
            "messages": {_msg(n): {"$ref": f"#/components/messages/{_msg(n)}"} for n in names},
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": topic.partitions,
                    "bindingVersion": "0.5.0",
                }
            },
        }
        inbound = "health_system" in topic.producers
        operations[f"{'send' if inbound else 'receive'}_{key}"] = {
            "action": "send" if inbound else "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": ("An integrator publishes to " if inbound else "A consumer reads ")
            + topic.name,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "NTX",
            "version": "1.0.0",
            "description": "Naltrexone treatment events: intake, schedules, alerts. CloudEvents JSON keyed by patient_id. Operations are from the integrator's view.",
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "development": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "Tansu (embedded, ntx run)",
            },
            "production": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "apache/kafka in KRaft mode (docker-compose.yml)",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _msg(name: str) -> str:
    return name.replace(".", "_")


def _message(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "contentType": "application/json",
        "payload": {"schemaFormat": "application/schema+json;version=draft-07", "schema": schema},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "pattern": PATIENT_ID_PATTERN},
                "bindingVersion": "0.5.0",
            }
        },
    }


def render() -> dict[str, str]:
    """Relative path -> file text, for writing and for the sync test."""
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
