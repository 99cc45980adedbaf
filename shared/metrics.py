"""Prometheus metrics every service exposes on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONSUMED = Counter(
    "ntx_messages_consumed_total", "Inbound messages by outcome", ["service", "outcome"]
)
PUBLISHED = Counter("ntx_events_published_total", "Outbox rows published", ["service"])
TIMERS_FIRED = Counter("ntx_timers_fired_total", "Durable timers fired", ["service"])
OUTBOX_PENDING = Gauge("ntx_outbox_pending", "Outbox rows not yet published", ["service"])
