"""``POST /fhir/{type}`` and ``POST /fhir``: one FHIR call, from its headers and body
to the status and FHIR JSON answered (DESIGN.md §8). The translation is the
domain's (:func:`services.gateway.domain.translate.translate`); this module checks
who calls, what they send, and writes the events, the identities and the held
results in one unit of work before answering, so an answered 201 is never lost
and a refusal leaves nothing behind.

Statuses: 401 no or unknown token; 415 a body that is not FHIR JSON; 413 a body
or a Bundle over its bound; 400 not a valid FHIR resource (or not the type the
path names); 403 a resource type outside the client's scopes; 422 valid FHIR NTX
cannot take (unknown codes, missing facts): each with an ``OperationOutcome``
naming the FHIR path. A transaction is all or nothing; a batch (and a
subscription notification) keeps its good entries and answers each entry."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.gateway import answers
from services.gateway.clients import Client, Unauthenticated, authenticate
from services.gateway.domain.outcome import Issue, Refused, operation_outcome, refuse
from services.gateway.domain.parse import load_json, parse_resource
from services.gateway.domain.settings import DEFAULT_SETTINGS
from services.gateway.domain.translate import translate
from services.gateway.repository import GatewayRepos
from shared.unit_of_work import UnitOfWork

Units = Callable[[datetime], AbstractAsyncContextManager[UnitOfWork[Any]]]

log = logging.getLogger("ntx.gateway")

MEDIA_TYPES = frozenset({"application/fhir+json", "application/json"})
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Call:
    authorization: str | None
    content_type: str | None
    resource_type: str | None  # from the path; None: ``POST /fhir`` (a Bundle)
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    written: int = 0


def refused(status: int, issues: list[Issue], **headers: str) -> Answer:
    return Answer(status, operation_outcome(issues), dict(headers))


def unauthenticated(why: str) -> Answer:
    return refused(
        401,
        [Issue("Authorization", why, "login")],
        **{"WWW-Authenticate": 'Bearer realm="ntx-gateway"'},
    )


def status_of(issues: list[Issue], otherwise: int) -> int:
    return 413 if any(i.code == "too-costly" for i in issues) else otherwise


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def check_call(clients: tuple[Client, ...], call: Call) -> tuple[Client, dict[str, Any]] | Answer:
    """The client and the request's JSON, or the refusal (nothing touched yet)."""
    try:
        client = authenticate(clients, call.authorization)
    except Unauthenticated as exc:
        return unauthenticated(str(exc))
    if media_type(call.content_type) not in MEDIA_TYPES:
        why = "send FHIR JSON: application/fhir+json or application/json"
        return refused(415, [Issue("Content-Type", why, "not-supported")])
    try:
        data = load_json(call.body)
        _right_type(data, call.resource_type)
        parse_resource(data)
    except Refused as exc:
        return refused(status_of(exc.issues, 400), exc.issues)
    denied = sorted({t for t in resource_types(data) if not client.allows(t)})
    if denied:
        why = f"this client may not send {', '.join(denied)}"
        return refused(403, [Issue("resourceType", why, "forbidden")])
    return client, data


def _right_type(data: dict[str, Any], named: str | None) -> None:
    kind = data.get("resourceType")
    if named is None and kind != "Bundle":
        raise refuse("resourceType", f"POST /fhir takes a Bundle; send a {kind} to /fhir/{kind}")
    if named is not None and kind != named:
        raise refuse("resourceType", f"{kind!r} sent to /fhir/{named}")


def resource_types(data: dict[str, Any]) -> Iterator[str]:
    """The types a request carries: a Bundle's entries (nested Bundles opened), not
    the Bundle itself."""
    kind = data.get("resourceType")
    if kind != "Bundle":
        yield str(kind)
        return
    for entry in data.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            yield from resource_types(resource)


async def accept(units: Units, data: dict[str, Any], call: Call, now: datetime) -> Answer:
    """Translate and write in one unit of work (``units(now)``, whose ``repos`` are
    the :class:`GatewayRepos`); a refusal rolls everything back."""
    try:
        async with units(now) as uow:
            repos: GatewayRepos = uow.repos
            result = await translate(call.body, repos.translation, now, DEFAULT_SETTINGS)
            fresh = await repos.sent_events.first_time(result.events, now)
            uow.events.extend(e for e in result.events if e["id"] in fresh)
    except Refused as exc:
        return refused(status_of(exc.issues, 422), exc.issues)
    if data.get("resourceType") == "Bundle":
        return Answer(200, answers.bundle(data, result, fresh), written=len(fresh))
    status, body = answers.single(result, fresh)
    return Answer(status, body, written=len(fresh))
