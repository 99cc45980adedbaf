"""Prometheus metrics every service exposes on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter(
    "ntx_messages_consumed_total", "Inbound messages by outcome", ["service", "outcome"]
)
PUBLISHED = Counter("ntx_events_published_total", "Outbox rows published", ["service"])
TIMERS_FIRED = Counter("ntx_timers_fired_total", "Durable timers fired", ["service"])
OUTBOX_PENDING = Gauge("ntx_outbox_pending", "Outbox rows not yet published", ["service"])

#: Buckets from a few milliseconds (an idle round) to minutes (an outage's backlog).
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

HANDLING = Histogram(
    "ntx_batch_handling_seconds",
    "Time to handle one batch of input, from the door to the commit",
    ["service"],
    buckets=SECONDS,
)
OUTBOX_AGE = Histogram(
    "ntx_outbox_age_seconds",
    "How long an event waited in the outbox until the broker acknowledged it",
    ["service"],
    buckets=SECONDS,
)
CONSUMER_LAG = Gauge(
    "ntx_consumer_lag",
    "Messages on an assigned partition this worker has not handled yet",
    ["service", "topic", "partition"],
)
