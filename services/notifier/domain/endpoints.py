"""Webhook endpoints and which of them a notification request goes to.

An endpoint is named; events, logs and metrics only ever carry the name, because a
URL may hold a token and a secret must never leave the process. Both are kept out
of ``repr`` and ``str``; the signing secret is a :class:`~pydantic.SecretStr`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from shared.events import ENDPOINT_NAME_PATTERN, Audience

#: Standard Webhooks 1.0: symmetric secrets are base64, prefixed ``whsec_``, and
#: carry at least 24 random bytes.
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
#: Standard Webhooks recommends a request timeout between 15 and 30 s.
MAX_TIMEOUT_S = 30.0
LOOPBACK_NAMES = frozenset({"localhost"})


def new_secret(n_bytes: int = 32) -> str:
    """A fresh Standard Webhooks signing secret (``whsec_`` and base64 of random
    bytes), for the demo's own receiver and for tests."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(n_bytes)).decode()


def _check_secret(value: SecretStr) -> SecretStr:
    """A Standard Webhooks signing secret; the message never repeats the value."""
    raw = value.get_secret_value().removeprefix(SECRET_PREFIX).rstrip("=")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 (expected whsec_ followed by base64)") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes")
    return value


SigningSecret = Annotated[SecretStr, AfterValidator(_check_secret)]


def _check_url(value: SecretStr) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use the signing secret")
    return value


WebhookUrl = Annotated[SecretStr, Field(max_length=2048), AfterValidator(_check_url)]
AlertCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Endpoint(BaseModel):
    """One receiver of webhooks for one audience (and optionally some alert codes)."""

    #: Validation errors never echo their input: it may be a secret or a URL with a token.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(pattern=ENDPOINT_NAME_PATTERN)
    #: Secret too: a receiver's URL often carries a token of its own.
    url: WebhookUrl = Field(repr=False)
    audience: Audience
    #: Alert codes this endpoint wants; absent means every code.
    alerts: frozenset[AlertCode] | None = None
    #: Signs every message; ``previous_secret`` signs too while a rotation is under way
    #: (Standard Webhooks: several space-separated signatures).
    secret: SigningSecret = Field(repr=False)
    previous_secret: SigningSecret | None = Field(default=None, repr=False)
    #: SHA-256 (hex) of the bearer token this receiver acknowledges alerts with.
    ack_token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", repr=False)
    #: Overrides of the delivery settings for this endpoint.
    max_in_flight: int | None = Field(default=None, ge=1, le=256)
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S)
    #: Plain http is refused except on loopback, unless this says otherwise.
    insecure_http: bool = False

    @model_validator(mode="after")
    def _only_the_care_team_acknowledges(self) -> Endpoint:
        if self.ack_token_sha256 and self.audience != "care_team":
            raise ValueError("ack_token_sha256: only care_team endpoints may acknowledge alerts")
        return self

    @model_validator(mode="after")
    def _https_unless_loopback(self) -> Endpoint:
        parts = urlsplit(self.url.get_secret_value())
        if parts.scheme == "http" and not (
            self.insecure_http or _is_loopback(parts.hostname or "")
        ):
            raise ValueError("url: https is required (set insecure_http to allow http)")
        return self

    def secrets(self) -> Sequence[SecretStr]:
        return (
            (self.secret,) if self.previous_secret is None else (self.secret, self.previous_secret)
        )

    def wants(self, audience: str, alert: str) -> bool:
        return self.audience == audience and (self.alerts is None or alert in self.alerts)


def endpoints_for(endpoints: Iterable[Endpoint], audience: str, alert: str) -> list[Endpoint]:
    """Every endpoint configured for this audience and alert code, in configured order."""
    return [e for e in endpoints if e.wants(audience, alert)]
