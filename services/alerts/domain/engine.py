"""The alert engine (DESIGN.md §4.3): pure functions from (state, input, now) to
(new state, events to emit, timers to set or cancel).

Deadlines are timers, so the worker keeps them in PostgreSQL and the replay keeps
them in a heap: the same rules run in both. Ids are derived from causes, so running
the same input twice yields the same events (and the inbox drops the repeat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from services.alerts.domain.settings import DEFAULT_SETTINGS, AlertSettings
from services.alerts.domain.state import Administration, OpenAlert, Outstanding, PatientAlertState
from shared import events as ev
from shared.envelope import stable_id
from shared.types import format_utc

MISSED_DOSE = ("missed_dose", "dose_not_recorded", "warning")
MISSED_INJECTION = ("missed_injection", "injection_not_recorded", "high")
BLOCKADE_LAPSED = ("overdose_risk", "blockade_lapsed", "critical")
DISCONTINUED = ("overdose_risk", "discontinued", "critical")
OPIOID_USE = ("opioid_use_detected", "urine_screen_positive", "high")
HEPATOTOXICITY = "hepatotoxicity"
LIVER_REASON = "transaminases_elevated"
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


@dataclass
class _Step:
    """Working context of one input: the state being changed and what it causes."""

    out: Outcome
    now: datetime
    s: AlertSettings

    @property
    def state(self) -> PatientAlertState:
        return self.out.state

    def set(self, timer: Timer) -> None:
        self.out.set_timers.append(timer)

    def cancel(self, key: str) -> None:
        self.out.cancel_timers.append(key)

    # --- lifecycle ------------------------------------------------------------------

    def raise_alert(self, spec: tuple[str, str, str], cause: str) -> None:
        code, reason, severity = spec
        key = f"{code}:{reason}"
        if key in self.state.open_alerts:
            return  # one open alert per patient, code and reason
        alert_id = stable_id(self.state.patient_id, code, reason, cause)
        alert = OpenAlert(
            alert_id=alert_id, alert=code, reason=reason, severity=severity, raised_at=self.now
        )
        self.state.open_alerts[key] = alert
        self._announce("ntx.alert.raised.v1", alert, "raised")
        self._schedule_escalation(key, alert)

    def escalate(self, key: str, severity: str | None = None) -> None:
        alert = self.state.open_alerts[key]
        if severity is not None:
            alert.severity = severity
        alert.escalated = True
        self._announce("ntx.alert.escalated.v1", alert, f"escalated:{alert.severity}")

    def resolve(self, code: str, reason: str) -> None:
        alert = self.state.open_alerts.pop(f"{code}:{reason}", None)
        if alert is not None:
            self.cancel(f"escalate:{code}:{reason}")
            self._emit(
                "ntx.alert.resolved.v1", _changed(self.state, alert), alert.alert_id, "resolved"
            )

    def _schedule_escalation(self, key: str, alert: OpenAlert) -> None:
        after = {"critical": self.s.escalate_critical_after, "high": self.s.escalate_high_after}
        if alert.severity in after:
            self.set(
                Timer(
                    f"escalate:{key}", self.now + after[alert.severity], "escalate", {"alert": key}
                )
            )

    def _announce(self, type_: str, alert: OpenAlert, transition: str) -> None:
        self._emit(type_, _changed(self.state, alert), alert.alert_id, transition)
        for audience in _audiences(self.state):
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

    def _emit(self, type_: str, data: BaseModel, alert_id: str, transition: str) -> None:
        self.out.emits.append(Emit(type_, data, stable_id(alert_id, transition)))


def _changed(state: PatientAlertState, alert: OpenAlert) -> ev.AlertChanged:
    return ev.AlertChanged(
        patient_id=state.patient_id,
        alert_id=alert.alert_id,
        alert=alert.alert,
        severity=alert.severity,  # type: ignore[arg-type]
        reason=alert.reason,
    )


def _audiences(state: PatientAlertState) -> list[str]:
    """Care team always; others only with consent (42 CFR Part 2)."""
    return ["care_team"] + ["patient"] * state.notify_patient + ["external"] * state.notify_external


# --- inputs ----------------------------------------------------------------------------


def handle(
    state: PatientAlertState | None,
    event_type: str,
    data: BaseModel,
    event_id: str,
    now: datetime,
    settings: AlertSettings = DEFAULT_SETTINGS,
    *,
    in_place: bool = False,
) -> Outcome:
    """The outcome of one input. ``state`` is left as it was, unless the caller hands
    it over with ``in_place`` (the worker does: its copy was loaded for this batch)."""
    patient_id = data.patient_id  # type: ignore[attr-defined]
    current = _own(state, in_place) if state else PatientAlertState(patient_id=patient_id)
    step = _Step(Outcome(current), now, settings)
    handler = HANDLERS.get(event_type)
    if handler is not None:
        handler(step, data, event_id)
    return step.out


def _plan_created(step: _Step, plan: ev.TreatmentPlan, event_id: str) -> None:
    st = step.state
    st.has_plan, st.formulation = True, plan.formulation
    st.notify_patient, st.notify_external = (
        plan.consent.notify_patient,
        plan.consent.notify_external,
    )
    st.suspended = st.on_hold = False
    st.stopped_at = None


def _dose_due(step: _Step, due: ev.DoseDue, event_id: str) -> None:
    _expect(step, "dose", due.due_utc)


def _injection_due(step: _Step, due: ev.InjectionDue, event_id: str) -> None:
    _expect(step, "injection", due.due_utc)


def _expect(step: _Step, kind: str, due_utc: datetime) -> None:
    if not step.state.active:
        return
    step.state.on_hold = False  # a regular due ends any surgical hold
    grace = _grace(step.s, kind)
    if _already_given(step, kind, due_utc, grace):
        return
    key = f"{kind}:{format_utc(due_utc)}"
    step.state.outstanding[key] = Outstanding(kind=kind, due_utc=due_utc)
    step.set(Timer(f"missed:{key}", due_utc + grace, f"missed_{kind}", {"outstanding": key}))


def _already_given(step: _Step, kind: str, due_utc: datetime, grace: timedelta) -> bool:
    """A due that arrives after the administration that settles it is not missed."""
    for given in step.state.unmatched:
        if (
            given.kind == kind
            and due_utc - step.s.early_administration <= given.at <= due_utc + grace
        ):
            step.state.unmatched.remove(given)
            return True
    return False


def _held(step: _Step, data: BaseModel, event_id: str) -> None:
    """Held doses are planned, never missed, and no lapse is alerted meanwhile."""
    step.state.on_hold = True


def _suspended(step: _Step, data: BaseModel, event_id: str) -> None:
    step.state.suspended = True
    step.cancel("lapse")


def _dose_given(step: _Step, given: ev.DoseAdministered, event_id: str) -> None:
    _administered(step, "dose", given.administered_at, given.dose_mg)


def _injection_given(step: _Step, given: ev.InjectionAdministered, event_id: str) -> None:
    _administered(step, "injection", given.administered_at, given.dose_mg)


def _administered(step: _Step, kind: str, at: datetime, dose_mg: int) -> None:
    st = step.state
    end = at + step.s.coverage(dose_mg, injection=kind == "injection")
    st.coverage_until = max(st.coverage_until or end, end)
    _settle_due(step, kind, at)
    step.resolve(*_missed_spec(kind)[:2])
    step.resolve(*BLOCKADE_LAPSED[:2])
    if st.active:
        grace = step.s.lapse_grace_xr if st.formulation == "xr" else step.s.lapse_grace_oral
        step.set(Timer("lapse", st.coverage_until + grace, "lapse"))


def _settle_due(step: _Step, kind: str, at: datetime) -> None:
    """An administration settles the nearest due whose window holds it (up to 12 h
    early, or late until that due's deadline) and passes over older ones for good,
    so a patient who resumes is not reported missing the day after. With no due in
    reach it waits (unmatched) for one that may still be on its way: due events and
    administrations travel on different topics, in either order."""
    st = step.state
    grace = _grace(step.s, kind)
    candidates = [
        (abs(o.due_utc - at), key)
        for key, o in st.outstanding.items()
        if o.kind == kind and o.due_utc - step.s.early_administration <= at <= o.due_utc + grace
    ]
    if candidates:
        settled = st.outstanding[min(candidates)[1]]
        for key, o in list(st.outstanding.items()):
            if o.kind == kind and o.due_utc <= settled.due_utc:
                del st.outstanding[key]
                step.cancel(f"missed:{key}")
                if o.due_utc + grace < at:  # its deadline passed before this dose: missed
                    # (raised as its deadline would have; the caller resolves it)
                    step.raise_alert(_missed_spec(kind), f"missed:{key}")
        return
    kept = [g for g in st.unmatched if g.at >= at - step.s.unmatched_kept_for]
    st.unmatched = [*kept, Administration(kind=kind, at=at)]


def _missed_spec(kind: str) -> tuple[str, str, str]:
    return MISSED_DOSE if kind == "dose" else MISSED_INJECTION


def _grace(s: AlertSettings, kind: str) -> timedelta:
    return s.missed_dose_after if kind == "dose" else s.missed_injection_after


def _screen(step: _Step, result: ev.UdsResulted, event_id: str) -> None:
    if result.opioids_detected and step.state.active:
        step.raise_alert(OPIOID_USE, event_id)
    elif not result.opioids_detected:
        step.resolve(*OPIOID_USE[:2])


def _liver(step: _Step, lab: ev.LabResulted, event_id: str) -> None:
    severity = hepatotoxicity_severity(lab, step.s)
    key = f"{HEPATOTOXICITY}:{LIVER_REASON}"
    current = step.state.open_alerts.get(key)
    if severity is None:
        step.resolve(HEPATOTOXICITY, LIVER_REASON)
    elif current is None:
        step.raise_alert((HEPATOTOXICITY, LIVER_REASON, severity), event_id)
    elif SEVERITY_RANK[severity] > SEVERITY_RANK[current.severity]:
        step.escalate(key, severity)


def hepatotoxicity_severity(lab: ev.LabResulted, s: AlertSettings = DEFAULT_SETTINGS) -> str | None:
    """Exact decimal comparison: ALT 120.3 with ULN 40.1 is 3x ULN."""
    multiple: Decimal = max(lab.alt / lab.alt_uln, lab.ast / lab.ast_uln)
    if multiple >= s.hepatotoxicity_high_multiple:
        return "high"
    return "warning" if multiple >= s.hepatotoxicity_warning_multiple else None


def _stopped(step: _Step, stop: ev.TreatmentStopped, event_id: str) -> None:
    st = step.state
    if st.stopped_at is not None:
        return
    st.stopped_at = stop.stopped_at
    for key in list(st.outstanding):
        step.cancel(f"missed:{key}")
    st.outstanding.clear()
    step.cancel("lapse")
    for code, reason, _ in (MISSED_DOSE, MISSED_INJECTION, BLOCKADE_LAPSED):
        step.resolve(code, reason)
    step.raise_alert(DISCONTINUED, event_id)
    step.set(Timer("post_stop", stop.stopped_at + step.s.post_stop_risk, "post_stop"))


def _acknowledged(step: _Step, ack: ev.AlertAcknowledged, event_id: str) -> None:
    for key, alert in step.state.open_alerts.items():
        if alert.alert == ack.alert:
            alert.acknowledged = True
            step.cancel(f"escalate:{key}")


HANDLERS: dict[str, Callable[[_Step, Any, str], None]] = {
    "ntx.plan.created.v1": _plan_created,
    "ntx.dose.due.v1": _dose_due,
    "ntx.injection.due.v1": _injection_due,
    "ntx.dose.held.v1": _held,
    "ntx.injection.held.v1": _held,
    "ntx.reinduction.required.v1": _suspended,
    "ntx.dose.administered.v1": _dose_given,
    "ntx.injection.administered.v1": _injection_given,
    "ntx.uds.resulted.v1": _screen,
    "ntx.lab.resulted.v1": _liver,
    "ntx.treatment.stopped.v1": _stopped,
    "ntx.alert.acknowledged.v1": _acknowledged,
}


# --- timers ------------------------------------------------------------------------------


def on_timer(
    state: PatientAlertState,
    timer: Timer,
    now: datetime,
    settings: AlertSettings = DEFAULT_SETTINGS,
    *,
    in_place: bool = False,
) -> Outcome:
    step = _Step(Outcome(_own(state, in_place)), now, settings)
    TIMERS[timer.kind](step, timer)
    return step.out


def _own(state: PatientAlertState, in_place: bool) -> PatientAlertState:
    return state if in_place else state.model_copy(deep=True)


def _missed(step: _Step, timer: Timer) -> None:
    """The deadline passed with the due unsettled: missed for good. If a dose was
    recorded since (it was handled before this deadline fired), the cause is already
    gone and the alert resolves at once."""
    st = step.state
    due = st.outstanding.pop(timer.payload["outstanding"], None)
    if due is None or not st.active:
        return
    code, reason, _ = spec = _missed_spec(due.kind)
    step.raise_alert(spec, timer.key)
    if any(g.kind == due.kind and g.at > due.due_utc for g in st.unmatched):
        step.resolve(code, reason)


def _lapse(step: _Step, timer: Timer) -> None:
    st = step.state
    if not st.active or st.on_hold or st.coverage_until is None:
        return
    grace = step.s.lapse_grace_xr if st.formulation == "xr" else step.s.lapse_grace_oral
    if st.coverage_until + grace <= step.now:
        step.raise_alert(BLOCKADE_LAPSED, f"lapse:{format_utc(st.coverage_until)}")


def _escalate(step: _Step, timer: Timer) -> None:
    alert = step.state.open_alerts.get(timer.payload["alert"])
    if alert is not None and not alert.acknowledged and not alert.escalated:
        step.escalate(timer.payload["alert"])


def _post_stop(step: _Step, timer: Timer) -> None:
    step.resolve(*DISCONTINUED[:2])


TIMERS: dict[str, Callable[[_Step, Timer], None]] = {
    "missed_dose": _missed,
    "missed_injection": _missed,
    "lapse": _lapse,
    "escalate": _escalate,
    "post_stop": _post_stop,
}
