"""Delivery outcomes (DESIGN.md §4.3 and §9 r2): the notifier says what became of each
notification request; a critical alert that is open and unacknowledged, and whose
latest round reached nobody, escalates at once and asks again.

A round is the set of requests one announcement (raise or escalation) made, one per
audience. An audience counts as unreached when its request has a failed outcome and
no delivered one (one endpoint delivering is someone told). Outcomes of an older
round, of an unknown or closed alert, or of an acknowledged one change nothing:
someone already answered, or the round they speak of is no longer the latest."""

from __future__ import annotations

from services.alerts.domain.lifecycle import Step
from services.alerts.domain.state import Notified, OpenAlert
from shared import events as ev


def delivered(step: Step, outcome: ev.NotificationOutcome, event_id: str) -> None:
    _record(step, outcome, delivered=True)


def failed(step: Step, outcome: ev.NotificationOutcome, event_id: str) -> None:
    if _record(step, outcome, delivered=False):
        _escalate_if_unreached(step, outcome.alert_id)


def _record(step: Step, outcome: ev.NotificationOutcome, *, delivered: bool) -> bool:
    """Note the outcome on its request of the alert's latest round; False when it
    speaks of nothing that round asked for (or of an acknowledged alert)."""
    found = _open_alert(step, outcome.alert_id)
    if found is None or found.acknowledged:
        return False
    request = _request(found, outcome.notification_id)
    if request is None:
        return False
    if delivered:
        request.delivered = True
    else:
        request.failed = True
    return True


def _escalate_if_unreached(step: Step, alert_id: str) -> None:
    for key, alert in step.state.open_alerts.items():
        if alert.alert_id == alert_id and _should_escalate(step, alert):
            step.escalate_undelivered(key)
            return


def _should_escalate(step: Step, alert: OpenAlert) -> bool:
    return (
        alert.severity in step.s.escalate_undelivered_severities
        and alert.undelivered_escalations < step.s.undelivered_escalations_per_alert
        and unreached(alert.notified)
    )


def unreached(round_: list[Notified]) -> bool:
    """Every audience of the round failed and none was delivered."""
    return bool(round_) and all(r.failed and not r.delivered for r in round_)


def _open_alert(step: Step, alert_id: str) -> OpenAlert | None:
    return next((a for a in step.state.open_alerts.values() if a.alert_id == alert_id), None)


def _request(alert: OpenAlert, notification_id: str) -> Notified | None:
    return next((r for r in alert.notified if r.notification_id == notification_id), None)
