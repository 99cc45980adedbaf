"""When to try a failed delivery again: exponential backoff with full jitter, capped,
until a give-up horizon or a number of attempts (numbers and sources in settings.py).

Full jitter (each wait drawn uniformly between zero and the ceiling) spreads the
retries of many deliveries that failed together, as Standard Webhooks asks, so a
receiver coming back from an outage is not hit by a synchronised wave.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from services.notifier.domain.settings import DeliverySettings

#: ``uniform(low, high)``; tests pass a fixed draw.
Draw = Callable[[float, float], float]


def ceiling(s: DeliverySettings, attempts_made: int) -> timedelta:
    """The longest wait after ``attempts_made`` failed attempts (1 = the first failed)."""
    grown = s.retry_base.total_seconds() * s.retry_factor ** max(attempts_made - 1, 0)
    return timedelta(seconds=min(grown, s.retry_cap.total_seconds()))


def deadline(s: DeliverySettings, accepted_at: datetime) -> datetime:
    return accepted_at + s.give_up_after


def next_attempt_at(
    s: DeliverySettings,
    *,
    accepted_at: datetime,
    attempts_made: int,
    now: datetime,
    retry_after: timedelta | None = None,
    draw: Draw = random.uniform,
) -> datetime | None:
    """When to try again after a failed attempt, or None to give up.

    The last attempt is pulled in to the horizon rather than dropped, so a receiver
    that is back within the day always gets the message. A receiver's Retry-After is
    honoured (never earlier than asked); if that lands past the horizon, give up now
    rather than attempt against the receiver's wish."""
    if attempts_made >= s.max_attempts or now >= deadline(s, accepted_at):
        return None
    wait = timedelta(seconds=draw(0.0, ceiling(s, attempts_made).total_seconds()))
    at = min(now + wait, deadline(s, accepted_at))
    if retry_after is not None:
        at = max(at, now + retry_after)
        if at > deadline(s, accepted_at):
            return None
    return at
