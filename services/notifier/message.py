"""The webhook message: a CloudEvent in HTTP structured mode, signed per Standard
Webhooks 1.0 with the ``standardwebhooks`` library (never hand-written HMAC).

The body is the ``notification.requested`` event itself (ids and codes only, with its
published schema), serialised once when the request is accepted so every attempt
sends the same bytes. ``webhook-id`` is the request's event id, the same on every
attempt and every endpoint, so receivers drop repeats; ``webhook-timestamp`` is the
wall-clock time of the attempt (receivers refuse stale ones, so it never follows a
simulated clock); ``webhook-signature`` holds one signature per active secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import SecretStr
from standardwebhooks import Webhook

from shared.envelope import Envelope, InvalidEvent

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "ntx-notifier/1"
#: Standard Webhooks: the id is signed as "{id}.{timestamp}.{body}", so it must not
#: contain a full stop. NTX event ids are UUIDs; anything else is refused.
WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def check_webhook_id(event_id: str) -> str:
    if not WEBHOOK_ID.match(event_id):
        raise InvalidEvent("id", "not usable as a webhook-id (letters, digits, _ and - only)")
    return event_id


def webhook_body(envelope: Envelope) -> bytes:
    """The CloudEvent as compact JSON (structured mode); absent attributes left out."""
    event = envelope.model_dump(mode="json", exclude_none=True)
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_headers(
    webhook_id: str, body: bytes, secrets: Sequence[SecretStr], at: datetime
) -> dict[str, str]:
    """Headers of one attempt made at ``at`` (wall clock)."""
    at = at.astimezone(UTC)
    text = body.decode()
    signatures = [Webhook(s.get_secret_value()).sign(webhook_id, at, text) for s in secrets]
    return {
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
