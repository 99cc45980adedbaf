"""What the alerts service and the notifier publish (§3.3): alert changes,
notification requests and delivery outcomes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.events.base import Data
from shared.types import Code, Identifier

Severity = Literal["info", "warning", "high", "critical"]
Audience = Literal["care_team", "patient", "external"]


class AlertChanged(Data):
    alert_id: Identifier
    alert: Code
    severity: Severity
    reason: Code


class NotificationRequested(Data):
    alert_id: Identifier
    alert: Code
    severity: Severity
    audience: Audience
    offer_naloxone: bool = False


# --- notifier output (§3.3 r2) ----------------------------------------------------

#: A configured webhook endpoint's name: what events and logs say instead of its URL.
ENDPOINT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
EndpointName = Annotated[str, Field(pattern=ENDPOINT_NAME_PATTERN)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
#: A bound on an outcome's ``attempts`` that no real delivery nears (the retry schedule
#: makes about 30 attempts in its 24 h, an operator's retry a schedule more), so an
#: absurd number is refused at the door by name, as every number of an input is.
MAX_ATTEMPTS = 1_000_000
#: Why an attempt got no HTTP status, or why no attempt was made.
DeliveryError = Literal["timeout", "connection_error", "endpoint_disabled", "no_endpoint"]


class NotificationOutcome(Data):
    """``ntx.notification.delivered.v1`` / ``.failed.v1``: what became of one
    notification request at one endpoint. ``endpoint`` is null only with status
    ``no_endpoint`` (nothing is configured for the audience)."""

    notification_id: str = Field(min_length=1, max_length=128)
    alert_id: str = Field(min_length=1, max_length=128)
    audience: Audience
    endpoint: EndpointName | None
    attempts: int = Field(ge=0, le=MAX_ATTEMPTS)
    status: HttpStatus | DeliveryError
