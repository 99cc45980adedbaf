"""A delivery and its attempts as the notifier's table rows (``100_notifier.sql``),
and back: the one place that knows the columns' order and how a status is stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.notifier.domain.delivery import Delivery, Settled
from services.notifier.domain.outcome import AttemptStatus
from services.notifier.repository import Attempt


def recorded_row(pos: int, settled: Settled, attempt: Attempt | None) -> tuple[Any, ...]:
    d = settled.delivery
    before = d.attempts - (1 if attempt is not None else 0)
    return (
        d.notification_id,
        d.endpoint,
        d.state,
        d.attempts,
        d.next_attempt_at,
        status_text(d.last_status),
        d.finished_at,
        before,
        pos,
    )


def attempt_row(a: Attempt) -> tuple[Any, ...]:
    retry_after = a.retry_after.total_seconds() if a.retry_after is not None else None
    return (a.notification_id, a.endpoint, a.number, a.at, str(a.status), retry_after)


def columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as columns, the arrays ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)]


def row(d: Delivery) -> tuple[Any, ...]:
    return (
        d.notification_id,
        d.endpoint,
        d.patient_id,
        d.alert_id,
        d.alert,
        d.audience,
        d.body,
        d.accepted_at,
        d.state,
        d.attempts,
        d.next_attempt_at,
        status_text(d.last_status),
        d.finished_at,
    )


def delivery(r: Mapping[str, Any]) -> Delivery:
    return Delivery(
        notification_id=r["notification_id"],
        endpoint=r["endpoint"],
        patient_id=r["patient_id"],
        alert_id=r["alert_id"],
        alert=r["alert"],
        audience=r["audience"],
        body=bytes(r["body"]),
        accepted_at=r["accepted_at"],
        state=r["state"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        last_status=status(r["last_status"]),
        finished_at=r["finished_at"],
    )


def status_text(status: AttemptStatus | None) -> str | None:
    return None if status is None else str(status)


def status(text: str | None) -> AttemptStatus | None:
    """An HTTP status is stored as its digits; an error class as its name."""
    if text is None:
        return None
    return int(text) if text.isdigit() else text  # type: ignore[return-value]
