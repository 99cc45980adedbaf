"""A receiver acknowledges an alert it was notified of: the pure part of the HTTP
call that becomes ``ntx.alert.acknowledged.v1`` (DESIGN.md §9).

Authentication: a bearer token per endpoint (``Authorization: Bearer ntxack_...``),
of which the configuration keeps only the SHA-256, as the gateway keeps client
tokens. A token is 32 random bytes, so a fast hash is enough: there is nothing to
guess. Only care-team endpoints may hold one: an acknowledgement stops the alert's
escalation, which a patient's or an outside party's system must never do.

Authorisation: an endpoint may acknowledge only an alert it was sent (any
notification of that ``alert_id`` addressed to it); any other ``alert_id`` is
answered as not found, so a receiver learns nothing of other alerts.

The event acknowledges exactly that ``alert_id`` (DESIGN.md §4.3: never a later
alert of the same code); its id derives from endpoint, alert and person, so a
receiver repeating its call produces the same event and the alerts service's inbox
drops the repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from services.notifier.domain.delivery import SOURCE, Delivery
from services.notifier.domain.endpoints import Endpoint
from shared import events as ev
from shared.envelope import build, stable_id
from shared.types import STRICT

TOKEN_PREFIX = "ntxack_"
#: An acknowledgement is two short strings; anything larger is refused unread.
MAX_BODY_BYTES = 4096
ACKNOWLEDGED = "ntx.alert.acknowledged.v1"


class AckRefused(Exception):
    """The call is refused: ``status`` is the HTTP answer, ``field`` names what."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.status, self.field, self.message = status, field, message


class AckRequest(BaseModel):
    """The body a receiver sends: which alert, and who in its system acknowledged."""

    model_config = STRICT

    alert_id: str = Field(min_length=1, max_length=128)
    #: A staff reference in the receiver's system (an id, not a name).
    by: str = Field(pattern=r"^[A-Za-z0-9_.@:-]{1,128}$")


def new_token() -> tuple[str, str]:
    """A fresh bearer token for a receiver, and the digest to configure."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(endpoints: Iterable[Endpoint], authorization: str | None) -> Endpoint:
    """The care-team endpoint whose token is in the ``Authorization`` header."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AckRefused(401, "authorization", "a bearer token is required")
    digest = token_digest(token.strip())
    for endpoint in endpoints:
        known = endpoint.ack_token_sha256
        if endpoint.audience == "care_team" and known and hmac.compare_digest(known, digest):
            return endpoint
    raise AckRefused(401, "authorization", "unknown token")


def parse_request(body: bytes) -> AckRequest:
    if len(body) > MAX_BODY_BYTES:
        raise AckRefused(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
    try:
        return AckRequest.model_validate_json(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise AckRefused(400, field, err["msg"]) from None


def acknowledge(
    request: AckRequest, endpoint: Endpoint, deliveries: Iterable[Delivery], now: datetime
) -> dict[str, Any]:
    """The ``alert.acknowledged`` CloudEvent, if ``endpoint`` was sent a notification
    of the alert; caused by that notification."""
    sent = [d for d in deliveries if d.alert_id == request.alert_id and d.endpoint == endpoint.name]
    if not sent:
        raise AckRefused(404, "alert_id", "no notification of this alert was sent here")
    first = min(sent, key=lambda d: d.accepted_at)
    data = ev.AlertAcknowledged(
        patient_id=first.patient_id, alert=first.alert, alert_id=request.alert_id, by=request.by
    )
    event_id = stable_id(SOURCE, "ack", endpoint.name, request.alert_id, request.by)
    return build(
        ACKNOWLEDGED, data, source=SOURCE, time=now, id_=event_id, causationid=first.notification_id
    )
