"""Bytes to ``fhir.resources`` R4B models (which read R4 JSON), within bounds.

Every failure is a :class:`Refused` naming the FHIR path; nothing here raises
anything else, whatever the input (malformed JSON, deep nesting, unknown resource
types inside a Bundle, a Bundle too large)."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from services.gateway.domain.outcome import Issue, Refused, refuse
from services.gateway.domain.settings import DEFAULT_SETTINGS, GatewaySettings


def load_json(raw: bytes | str, settings: GatewaySettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """The JSON object of a request body; numbers stay exact (decimal), never floats."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > settings.max_document_bytes:
        raise refuse("$", f"larger than {settings.max_document_bytes} bytes", "too-costly")
    try:
        value = json.loads(raw, parse_float=str, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise refuse("$", f"not valid JSON: {_short(exc)}", "structure") from None
    if not isinstance(value, dict):
        raise refuse("$", "expected a JSON object (a FHIR resource)", "structure")
    if _depth(value) > settings.max_json_depth:
        raise refuse("$", f"nested deeper than {settings.max_json_depth} levels", "too-costly")
    return value


def parse_resource(
    data: dict[str, Any], path: str | None = None, settings: GatewaySettings = DEFAULT_SETTINGS
) -> Resource:
    """A resource model from its JSON object. ``path`` is where it sits (for a Bundle
    entry, ``Bundle.entry[2].resource``); by default its resource type."""
    kind = data.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise refuse(path or "$", "resourceType: required", "required")
    model = _model_class(kind)
    if model is None:
        raise refuse(
            path or "$", f"resourceType: unknown FHIR resource type {kind!r}", "not-supported"
        )
    _check_entries(data, path or kind, settings)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Refused(_issues(exc, path or kind)) from None
    except (KeyError, TypeError, ValueError) as exc:  # fhir_core's own lookups
        raise refuse(path or kind, f"not a valid {kind}: {_short(exc)}", "structure") from None


def _model_class(kind: str) -> type[Resource] | None:
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError, AttributeError, ImportError):
        return None
    return model if issubclass(model, Resource) else None


def _check_entries(data: dict[str, Any], path: str, settings: GatewaySettings) -> None:
    """fhir_core fails with a bare KeyError on an unknown type inside a Bundle, and a
    Bundle's size is bounded before it costs anything: both checked on the JSON."""
    if data.get("resourceType") != "Bundle":
        return
    total = _count_entries(data, settings.max_bundle_nesting + 1)
    if total > settings.max_bundle_entries:
        raise refuse(
            f"{path}.entry",
            f"{total} entries: at most {settings.max_bundle_entries} in one request",
            "too-costly",
        )
    entries = data.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        at = f"{path}.entry[{i}].resource"
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or _model_class(kind) is None:
            raise refuse(at, f"resourceType: unknown FHIR resource type {kind!r}", "not-supported")
        _check_entries(resource, at, settings)


def _count_entries(data: Any, levels: int) -> int:
    if levels <= 0 or not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        return 0
    entries = data["entry"]
    nested = sum(
        _count_entries(e.get("resource"), levels - 1) for e in entries if isinstance(e, dict)
    )
    return len(entries) + nested


def _issues(exc: ValidationError, base: str) -> list[Issue]:
    return [
        Issue(fhir_path(base, err["loc"]), err["msg"].removeprefix("Value error, "))
        for err in exc.errors()
    ]


def fhir_path(base: str, loc: tuple[Any, ...]) -> str:
    """A pydantic error location as FHIRPath: ``('entry', 0, 'resource', 'status')``
    under ``Bundle`` is ``Bundle.entry[0].resource.status``."""
    out = base
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and not str(part)[0].isupper():  # model names in unions are not paths
            out += f".{part}"
    return out


def _depth(value: Any, level: int = 0) -> int:
    if level > 10_000:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
