"""The alert lifecycle (DESIGN.md §4.3): one open alert per patient, code and reason;
raise, escalate (a worse severity, unacknowledged in time, or new evidence), resolve;
each raised or escalated alert asks for notifications, as consent allows.

:class:`Step` is the working context of one input or deadline: the state being
changed and what it causes (events, timers). Ids are derived from causes, so the
same input run twice yields the same events and the inbox drops the repeat."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.alerts.domain.settings import AlertSettings
from services.alerts.domain.state import (
    Notified,
    OpenAlert,
    PatientAlertState,
    consented_audiences,
    request_id,
)
from shared import events as ev
from shared.ids import stable_id

Spec = tuple[str, str, str]  # alert code, reason, severity

MISSED_DOSE: Spec = ("missed_dose", "dose_not_recorded", "warning")
DOSE_NOT_GIVEN: Spec = ("missed_dose", "dose_not_given", "warning")
MISSED_INJECTION: Spec = ("missed_injection", "injection_not_recorded", "high")
INJECTION_NOT_GIVEN: Spec = ("missed_injection", "dose_not_given", "high")
BLOCKADE_LAPSED: Spec = ("overdose_risk", "blockade_lapsed", "critical")
DISCONTINUED: Spec = ("overdose_risk", "discontinued", "critical")
TOLERANCE_LOST: Spec = ("overdose_risk", "tolerance_lost_after_hold", "high")
OPIOID_USE: Spec = ("opioid_use_detected", "urine_screen_positive", "high")
HEPATOTOXICITY = ("hepatotoxicity", "transaminases_elevated")
BLOCKADE_AT_PROCEDURE: Spec = ("blockade_at_procedure", "covered_on_procedure_day", "high")
SUPERSEDED = "superseded"
#: [r2] the reason of an escalation because no notification of a round was delivered.
NOTIFICATIONS_FAILED = "notifications_failed"
SEVERITY_RANK = {"info": 0, "warning": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class Timer:
    key: str
    due_at: datetime
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Emit:
    type: str
    data: BaseModel
    id: str


@dataclass
class Outcome:
    state: PatientAlertState
    emits: list[Emit] = field(default_factory=list)
    set_timers: list[Timer] = field(default_factory=list)
    cancel_timers: list[str] = field(default_factory=list)
    #: [r2] a patient whose plan was never seen was adopted (for the metric).
    adopted: bool = False


def key_of(spec: tuple[str, ...]) -> str:
    return f"{spec[0]}:{spec[1]}"


@dataclass
class Step:
    out: Outcome
    now: datetime
    s: AlertSettings

    @property
    def state(self) -> PatientAlertState:
        return self.out.state

    def set(self, timer: Timer) -> None:
        """A deadline never falls before "now": one caused by a back-dated record
        happens when the record arrives, never before it existed (DESIGN.md §4.3)."""
        if timer.due_at < self.now:
            timer = Timer(timer.key, self.now, timer.kind, timer.payload)
        self.out.set_timers.append(timer)

    def cancel(self, key: str) -> None:
        self.out.cancel_timers.append(key)

    def is_open(self, spec: tuple[str, ...]) -> OpenAlert | None:
        return self.state.open_alerts.get(key_of(spec))

    def raise_alert(self, spec: Spec, cause: str) -> None:
        code, reason, severity = spec
        key = key_of(spec)
        if key in self.state.open_alerts:
            return  # one open alert per patient, code and reason
        alert = OpenAlert(
            alert_id=stable_id(self.state.patient_id, code, reason, cause),
            alert=code,
            reason=reason,
            severity=severity,
            raised_at=self.now,
        )
        self.state.open_alerts[key] = alert
        self._announce("ntx.alert.raised.v1", alert, "raised")
        self._schedule_escalation(key, alert)

    def escalate(self, key: str, transition: str | None = None) -> None:
        alert = self.state.open_alerts[key]
        alert.escalated = True
        self._announce("ntx.alert.escalated.v1", alert, transition or f"escalated:{alert.severity}")

    def escalate_undelivered(self, key: str) -> None:
        """[r2] No notification of the alert's latest round reached anyone: escalate
        (same severity) and ask again, counted so it happens a bounded number of times."""
        alert = self.state.open_alerts[key]
        alert.undelivered_escalations += 1
        transition = f"undelivered:{alert.undelivered_escalations}"
        self._announce("ntx.alert.escalated.v1", alert, transition, NOTIFICATIONS_FAILED)

    def upgrade(self, key: str, severity: str, cause: str) -> None:
        """A worse result: the new severity is announced, needs its own acknowledgement,
        and from now on escalates as an alert of that severity would."""
        alert = self.state.open_alerts[key]
        alert.severity, alert.acknowledged, alert.escalated = severity, False, False
        self._announce("ntx.alert.escalated.v1", alert, f"upgraded:{severity}:{cause}")
        self._schedule_escalation(key, alert)

    def resolve(self, spec: tuple[str, ...], why: str | None = None) -> None:
        """Resolve the open alert of ``spec``; ``why`` replaces its reason in the event
        (``superseded`` when a new episode takes its place)."""
        key = key_of(spec)
        alert = self.state.open_alerts.pop(key, None)
        if alert is not None:
            self.cancel(f"escalate:{key}")
            data = changed(self.state, alert, why)
            self._emit("ntx.alert.resolved.v1", data, alert.alert_id, "resolved")

    def acknowledge(self, key: str) -> None:
        self.state.open_alerts[key].acknowledged = True
        self.cancel(f"escalate:{key}")

    def _schedule_escalation(self, key: str, alert: OpenAlert) -> None:
        after = {"critical": self.s.escalate_critical_after, "high": self.s.escalate_high_after}
        if alert.severity in after:
            payload = {"alert": key, "alert_id": alert.alert_id}
            self.set(
                Timer(f"escalate:{key}", self.now + after[alert.severity], "escalate", payload)
            )

    def _announce(
        self, type_: str, alert: OpenAlert, transition: str, why: str | None = None
    ) -> None:
        """The change, and one notification request per audience: a new round, which
        the alert remembers (ids and audiences) to match the outcomes that come back."""
        self._emit(type_, changed(self.state, alert, why), alert.alert_id, transition)
        alert.notified = []
        for audience in audiences(self.state):
            note = ev.NotificationRequested(
                patient_id=self.state.patient_id,
                alert_id=alert.alert_id,
                alert=alert.alert,
                severity=alert.severity,  # type: ignore[arg-type]
                audience=audience,  # type: ignore[arg-type]
                offer_naloxone=alert.alert == "overdose_risk",
            )
            self._emit(
                "ntx.notification.requested.v1", note, alert.alert_id, f"{transition}:{audience}"
            )
            sent = request_id(alert.alert_id, transition, audience)
            alert.notified.append(Notified(notification_id=sent, audience=audience))

    def _emit(self, type_: str, data: BaseModel, alert_id: str, transition: str) -> None:
        self.out.emits.append(Emit(type_, data, stable_id(alert_id, transition)))


def changed(state: PatientAlertState, alert: OpenAlert, why: str | None = None) -> ev.AlertChanged:
    return ev.AlertChanged(
        patient_id=state.patient_id,
        alert_id=alert.alert_id,
        alert=alert.alert,
        severity=alert.severity,  # type: ignore[arg-type]
        reason=why or alert.reason,
    )


def audiences(state: PatientAlertState) -> list[str]:
    """Care team always; others only with consent (42 CFR Part 2); an adopted
    patient's consent is unknown, so the care team only."""
    return consented_audiences(state.notify_patient, state.notify_external)
