"""What one HTTP attempt means for its delivery (Standard Webhooks 1.0, "Delivery
success and failure"), and the receiver's ``Retry-After``.

* 2xx: delivered.
* 410 Gone: the receiver wants no more webhooks; the endpoint is disabled.
* Anything else is a failed attempt, retried on the schedule: 5xx, timeouts and
  connection errors; 3xx (redirects are not followed: update the URL instead); 429
  (waiting at least its Retry-After); and every other 4xx. A 400, 401, 403 or 404
  from a receiver is most often a configuration slip on either side (a wrong secret,
  a route not yet deployed) that is fixed within the day, and giving up early on a
  clinical notification is the worse error; retrying one small signed request
  costs little. After the horizon the delivery fails and the failure is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

from shared.events import DeliveryError

Verdict = Literal["delivered", "retry", "disable"]
#: An attempt's result: the HTTP status, or why there was none.
AttemptStatus = int | DeliveryError
GONE = 410


@dataclass(frozen=True)
class AttemptResult:
    status: AttemptStatus
    retry_after: timedelta | None = None


def verdict(status: AttemptStatus) -> Verdict:
    if isinstance(status, int) and 200 <= status <= 299:
        return "delivered"
    if status == GONE:
        return "disable"
    return "retry"


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as a wait from ``now`` (RFC 9110: delay-seconds or an
    HTTP-date); None when absent or unreadable, so the normal schedule applies."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about local time
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))
