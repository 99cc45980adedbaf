"""The AsyncAPI 3.1 document of every NTX topic (DESIGN.md §3), generated from the
same schemas as ``docs/schemas`` so the two never disagree.

Self-contained for standard tools: each message's payload is its CloudEvents schema
(draft-07, :mod:`shared.schemas`) with the shared parts hoisted into
``components/schemas`` and referenced from there; the headers of the CloudEvents
Kafka binding (structured mode) and the Kafka security schemes are declared.
Operations are from the integrator's view: send to the input topics, receive the rest.
"""

from __future__ import annotations

from typing import Any

from shared.kafka_binding import STRUCTURED_CONTENT_TYPE
from shared.schemas import DLQ_TYPE, dead_letter_schema, envelope_schema, inbound
from shared.topics import ALL_TOPICS, DLQ, EVENT_TYPES, EventType, Topic
from shared.types import PATIENT_ID_PATTERN

VERSION = "3.1.0"
SCHEMA_FORMAT = "application/schema+json;version=draft-07"
COMPONENT_REFS = "#/components/schemas/{model}"
BINDING_VERSION = "0.5.0"
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def asyncapi() -> dict[str, Any]:
    shared_parts: dict[str, Any] = {}
    messages = {
        _msg(name): _event_message(kind, shared_parts) for name, kind in sorted(EVENT_TYPES.items())
    }
    messages[_msg(DLQ_TYPE)] = _dead_letter_message()
    return {
        "asyncapi": VERSION,
        "info": {
            "title": "NTX",
            "version": "1.0.0",
            "description": "Naltrexone treatment events: intake, schedules, alerts. CloudEvents 1.0"
            " JSON in structured mode, keyed by patient_id. Operations are from the integrator's"
            " view.",
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": _servers(),
        "channels": {_msg(t.name): _channel(t) for t in ALL_TOPICS},
        "operations": dict(_operation(t) for t in ALL_TOPICS),
        "components": {
            "messages": messages,
            "schemas": dict(sorted(shared_parts.items())),
            "securitySchemes": _security_schemes(),
        },
    }


def _msg(name: str) -> str:
    return name.replace(".", "_")


def _types_on(topic: Topic) -> list[str]:
    if topic is DLQ:
        return [DLQ_TYPE]
    return [n for n, k in sorted(EVENT_TYPES.items()) if k.topic is topic]


def _channel(topic: Topic) -> dict[str, Any]:
    return {
        "address": topic.name,
        "description": f"{topic.description} Written by {', '.join(topic.producers)};"
        f" read by {', '.join(topic.consumers)}.",
        "messages": {
            _msg(n): {"$ref": f"#/components/messages/{_msg(n)}"} for n in _types_on(topic)
        },
        "bindings": {
            "kafka": {
                "topic": topic.name,
                "partitions": topic.partitions,
                "bindingVersion": BINDING_VERSION,
            }
        },
    }


def _operation(topic: Topic) -> tuple[str, dict[str, Any]]:
    sends = "health_system" in topic.producers
    action = "send" if sends else "receive"
    key = _msg(topic.name)
    return f"{action}_{key}", {
        "action": action,
        "channel": {"$ref": f"#/channels/{key}"},
        "messages": [{"$ref": f"#/channels/{key}/messages/{_msg(n)}"} for n in _types_on(topic)],
        "summary": ("An integrator publishes to " if sends else "A consumer reads ") + topic.name,
    }


def _event_message(kind: EventType, shared_parts: dict[str, Any]) -> dict[str, Any]:
    schema = envelope_schema(kind, COMPONENT_REFS)
    for name, part in schema.pop("definitions", {}).items():
        if shared_parts.setdefault(name, part) != part:
            raise ValueError(f"two different schemas named {name}: rename one model")
    return {
        "name": kind.type,
        "title": kind.type,
        "contentType": "application/cloudevents+json",
        "headers": _headers(kind),
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": schema},
        "bindings": {"kafka": _key_binding()},
    }


def _headers(kind: EventType) -> dict[str, Any]:
    """The CloudEvents Kafka binding's structured-mode headers. NTX always sends them;
    an integrator may send either mode (binary mode: ``ce_*`` headers, the data as the
    value), so on inbound types they are described but not required."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "content-type": {
                "type": "string",
                "description": "Structured mode: " + STRUCTURED_CONTENT_TYPE,
                **({} if inbound(kind) else {"const": STRUCTURED_CONTENT_TYPE}),
            },
            "ntx-type": {
                "const": kind.type,
                "description": "The event type, to route or skip a message unparsed.",
            },
            "traceparent": {
                "type": "string",
                "pattern": TRACEPARENT_PATTERN,
                "description": "W3C trace context of the cause, carried to its effects.",
            },
            "tracestate": {"type": "string", "description": "W3C trace context, vendor part."},
        },
    }
    if not inbound(kind):
        schema["required"] = ["content-type", "ntx-type"]
    else:
        schema["description"] = (
            "Structured mode as shown, or binary mode (ce_* headers, content-type of the data)."
        )
    return schema


def _key_binding() -> dict[str, Any]:
    return {
        "key": {"type": "string", "pattern": PATIENT_ID_PATTERN, "description": "patient_id"},
        "bindingVersion": BINDING_VERSION,
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": DLQ_TYPE,
        "title": DLQ_TYPE,
        "contentType": "application/json",
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": dead_letter_schema()},
        "bindings": {"kafka": _key_binding()},
    }


def _servers() -> dict[str, Any]:
    return {
        "development": {
            "host": "127.0.0.1:9092",
            "protocol": "kafka",
            "description": "The embedded broker of `ntx run` (PLAINTEXT, loopback only;"
            " its address is in var/endpoints.json).",
        },
        "production": {
            "host": "kafka:9093",
            "protocol": "kafka-secure",
            "description": "Apache Kafka with SASL/SCRAM-SHA-512 over TLS; each principal"
            " may read only its input topics and write only its output topics (ACLs).",
            "security": [{"$ref": "#/components/securitySchemes/scramSha512"}],
        },
    }


def _security_schemes() -> dict[str, Any]:
    return {
        "scramSha512": {
            "type": "scramSha512",
            "description": "SASL/SCRAM-SHA-512 credentials, one principal per client.",
        },
    }
