"""CDS Hooks over HTTP (DESIGN.md §8): discovery, and the naltrexone ``order-sign``
service, which runs the same pure intake rules as the intake service on the
prefetched resources and answers cards (:func:`services.gateway.domain.cds.order_sign`).
It stores nothing and writes no event.

A caller needs a gateway client token with the scope ``cds-services``: the request
carries the patient's clinical facts. Discovery is open, as CDS Hooks expects."""

from __future__ import annotations

from datetime import datetime

from services.gateway.accepting import (
    MEDIA_TYPES,
    Answer,
    Call,
    media_type,
    refused,
    unauthenticated,
)
from services.gateway.clients import CDS_SCOPE, Client, Unauthenticated, authenticate
from services.gateway.domain.cds import SERVICE_ID, discovery, order_sign
from services.gateway.domain.outcome import Issue, Refused


def discovery_answer() -> Answer:
    return Answer(200, discovery())


def order_sign_call(
    clients: tuple[Client, ...], service_id: str, call: Call, now: datetime
) -> Answer:
    try:
        client = authenticate(clients, call.authorization)
    except Unauthenticated as exc:
        return unauthenticated(str(exc))
    if not client.allows(CDS_SCOPE):
        return refused(403, [Issue("$", f"this client may not call {CDS_SCOPE}", "forbidden")])
    if service_id != SERVICE_ID:
        return refused(404, [Issue("$", f"no CDS service {service_id!r}", "not-found")])
    if media_type(call.content_type) not in MEDIA_TYPES:
        return refused(415, [Issue("Content-Type", "send JSON", "not-supported")])
    try:
        return Answer(200, order_sign(call.body, now))
    except Refused as exc:
        return refused(400, exc.issues)
