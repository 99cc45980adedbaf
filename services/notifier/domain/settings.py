"""Delivery numbers (DESIGN.md §9), each with the source it follows and why.

The schedule follows Standard Webhooks 1.0 ("Deliverability and reliability":
exponential backoff, random jitter, a schedule spanning a long time, give up and
disable eventually) and Svix's published schedule (immediately, 5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 10 h: 8 attempts over about 27 h). Where this differs it is for the
clinical case: a care team's tool that was down for an hour must get an overdose-risk
notification within the hour it is back, not up to 10 h later, so the longest wait is
1 h rather than 10 h. A retry to a dead endpoint costs one small signed POST, so the
extra attempts (about 50 a day instead of 8) are cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class DeliverySettings:
    # First retry ceiling: both Standard Webhooks' example and Svix retry after 5 s.
    retry_base: timedelta = timedelta(seconds=5)
    # Growth of the ceiling per failed attempt: 5 s, 20 s, 80 s, 5 min 20 s, 21 min,
    # then the cap; close to Svix's 5 s -> 5 min -> 30 min opening steps.
    retry_factor: float = 4.0
    # Longest wait between attempts (see the module docstring: clinical, not Svix's 10 h).
    retry_cap: timedelta = timedelta(hours=1)
    # Give-up horizon, counted from when the request was accepted: "over about a day"
    # (issue 16); Svix's schedule ends after about 27 h. The last attempt is made at
    # the horizon itself, so a receiver back within the day always gets the message.
    give_up_after: timedelta = timedelta(hours=24)
    # Backstop on attempts. With full jitter a day takes about 50 attempts at the
    # 1 h cap; 100 is only reached if the jitter draws stay implausibly short.
    max_attempts: int = 100
    # Request timeout: Standard Webhooks recommends 15-30 s; Svix uses 15 s. A
    # timeout is a failed attempt.
    request_timeout: timedelta = timedelta(seconds=15)
    # Requests in flight per endpoint: Standard Webhooks asks senders to throttle
    # (429, 502, 504); a small bound keeps one busy receiver from being flooded
    # while still meeting the 500 deliveries/s target on loopback.
    max_in_flight: int = 16
    # An attempt that was claimed but never recorded (the notifier died mid-request)
    # is attempted again this long after it was claimed: the longest request timeout
    # an endpoint may set (30 s, endpoints.MAX_TIMEOUT_S) plus 15 s to record it, so
    # a slow attempt is never claimed twice.
    claim_lease: timedelta = timedelta(seconds=45)


DEFAULT_SETTINGS = DeliverySettings()
