"""One notification request at one endpoint: a delivery, and its state machine.

    pending --2xx--------------------------> delivered
    pending --410 Gone---------------------> endpoint_disabled
    pending --(endpoint disabled or removed)> endpoint_disabled
    pending --failed attempt, horizon left--> pending (next_attempt_at later)
    pending --failed attempt, no retry left-> failed

Every move out of ``pending`` yields exactly one outcome event
(``notification.delivered`` or ``notification.failed``). Pure: the caller supplies
"now" and the jitter draw.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from services.notifier.domain.endpoints import Endpoint, endpoints_for
from services.notifier.domain.outcome import AttemptResult, AttemptStatus, verdict
from services.notifier.domain.retry import Draw, next_attempt_at
from services.notifier.domain.settings import DeliverySettings
from shared import events as ev
from shared.envelope import stable_id

State = Literal["pending", "delivered", "failed", "endpoint_disabled"]
DELIVERED = "ntx.notification.delivered.v1"
FAILED = "ntx.notification.failed.v1"
SOURCE = "ntx/notifier"


class InvalidTransition(ValueError):
    """A finished delivery was asked to move again: a defect in the caller."""


@dataclass(frozen=True)
class Delivery:
    notification_id: str  # the request's event id, sent as webhook-id
    endpoint: str
    patient_id: str
    alert_id: str
    alert: str
    audience: str
    body: bytes  # the CloudEvent sent on every attempt, byte for byte the same
    accepted_at: datetime
    state: State = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status: AttemptStatus | None = None
    finished_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.notification_id, self.endpoint)


@dataclass(frozen=True)
class Outcome:
    """An outcome event to publish: its type, a deterministic id, and its data."""

    type: str
    id: str
    data: ev.NotificationOutcome


@dataclass(frozen=True)
class Settled:
    delivery: Delivery
    outcome: Outcome | None = None
    disable_endpoint: bool = False


def plan(
    request: ev.NotificationRequested,
    notification_id: str,
    body: bytes,
    endpoints: list[Endpoint],
    disabled: frozenset[str],
    now: datetime,
) -> tuple[list[Delivery], list[Outcome]]:
    """The deliveries a request needs, due at once, and the outcomes known already:
    ``no_endpoint`` when nothing is configured for its audience and code, and
    ``endpoint_disabled`` for each disabled endpoint (nothing is dropped silently)."""
    targets = endpoints_for(endpoints, request.audience, request.alert)
    if not targets:
        return [], [_no_endpoint(request, notification_id)]
    deliveries, outcomes = [], []
    for endpoint in targets:
        fresh = Delivery(
            notification_id=notification_id,
            endpoint=endpoint.name,
            patient_id=request.patient_id,
            alert_id=request.alert_id,
            alert=request.alert,
            audience=request.audience,
            body=body,
            accepted_at=now,
            next_attempt_at=now,
        )
        if endpoint.name in disabled:
            fresh = endpoint_gone(fresh, now).delivery
            outcomes.append(outcome_of(fresh))
        deliveries.append(fresh)
    return deliveries, outcomes


def settle(
    delivery: Delivery,
    result: AttemptResult,
    now: datetime,
    s: DeliverySettings,
    draw: Draw = random.uniform,
) -> Settled:
    """The delivery after one attempt with ``result``."""
    _require_pending(delivery)
    tried = replace(delivery, attempts=delivery.attempts + 1, last_status=result.status)
    match verdict(result.status):
        case "delivered":
            return _finish(tried, "delivered", now)
        case "disable":
            return replace(_finish(tried, "endpoint_disabled", now), disable_endpoint=True)
    at = next_attempt_at(
        s,
        accepted_at=tried.accepted_at,
        attempts_made=tried.attempts,
        now=now,
        retry_after=result.retry_after,
        draw=draw,
    )
    if at is None:
        return _finish(tried, "failed", now)
    return Settled(replace(tried, next_attempt_at=at))


def endpoint_gone(delivery: Delivery, now: datetime) -> Settled:
    """A pending delivery whose endpoint was disabled (410) or removed from the
    configuration: it fails at once, with status ``endpoint_disabled``."""
    _require_pending(delivery)
    return _finish(replace(delivery, last_status="endpoint_disabled"), "endpoint_disabled", now)


def _finish(delivery: Delivery, state: State, now: datetime) -> Settled:
    done = replace(delivery, state=state, next_attempt_at=None, finished_at=now)
    return Settled(done, outcome_of(done))


def outcome_of(delivery: Delivery) -> Outcome:
    """The outcome event of a finished delivery. Its id is derived from the delivery
    and its attempt count, so re-publishing after a crash repeats the same event."""
    type_ = DELIVERED if delivery.state == "delivered" else FAILED
    data = ev.NotificationOutcome(
        patient_id=delivery.patient_id,
        notification_id=delivery.notification_id,
        alert_id=delivery.alert_id,
        audience=delivery.audience,  # type: ignore[arg-type]
        endpoint=delivery.endpoint,
        attempts=delivery.attempts,
        status=delivery.last_status,  # type: ignore[arg-type]
    )
    parts = (SOURCE, delivery.notification_id, delivery.endpoint, str(delivery.attempts), type_)
    return Outcome(type_, stable_id(*parts), data)


def _no_endpoint(request: ev.NotificationRequested, notification_id: str) -> Outcome:
    data = ev.NotificationOutcome(
        patient_id=request.patient_id,
        notification_id=notification_id,
        alert_id=request.alert_id,
        audience=request.audience,
        endpoint=None,
        attempts=0,
        status="no_endpoint",
    )
    return Outcome(FAILED, stable_id(SOURCE, notification_id, "-", "0", FAILED), data)


def _require_pending(delivery: Delivery) -> None:
    if delivery.state != "pending":
        raise InvalidTransition(f"state: delivery is {delivery.state}, not pending")
