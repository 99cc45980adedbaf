"""The course of treatment (DESIGN.md §4.3): plans, stops (each a new episode),
suspension after a procedure, procedures scheduled under blockade, acknowledgements,
and the deadlines that end post-stop and post-hold risk or escalate an alert."""

from __future__ import annotations

from services.alerts.domain.doses import adopt, missed_specs, restored
from services.alerts.domain.lifecycle import (
    BLOCKADE_AT_PROCEDURE,
    BLOCKADE_LAPSED,
    DISCONTINUED,
    SUPERSEDED,
    TOLERANCE_LOST,
    Step,
    Timer,
)
from shared import events as ev
from shared.localtime import local_midnight_utc

OFF_TREATMENT = (DISCONTINUED, TOLERANCE_LOST)


def plan_created(step: Step, plan: ev.TreatmentPlan, event_id: str) -> None:
    """A (new) plan: under treatment again. Post-stop and post-hold risk stay flagged
    until a dose or injection is recorded under it (blockade restored); one recorded
    since the plan's start already counts (doses and plans travel on different
    topics, so the dose may come first)."""
    st = step.state
    off = st.stopped_at is not None or st.suspended
    off = off or any(step.is_open(spec) for spec in OFF_TREATMENT)
    st.has_plan, st.adopted, st.formulation = True, False, plan.formulation
    st.timezone = plan.timezone
    st.notify_patient = plan.consent.notify_patient
    st.notify_external = plan.consent.notify_external
    st.suspended = st.on_hold = False
    st.stopped_at = None
    began = local_midnight_utc(plan.start_date, plan.timezone)
    st.dosed_since_plan = st.last_dose_at is not None and st.last_dose_at >= began
    st.first_due_at = None
    st.restoring = st.restoring or off
    if st.restoring and st.dosed_since_plan:
        restored(step)


def stopped(step: Step, stop: ev.TreatmentStopped, event_id: str) -> None:
    """Every stop is a new episode with its own discontinued alert; one still open
    from an earlier stop is resolved first (superseded)."""
    st = step.state
    st.stopped_at = stop.stopped_at
    st.restoring = False
    _clear_dues(step)
    for spec in (*missed_specs("dose"), *missed_specs("injection"), BLOCKADE_LAPSED):
        step.resolve(spec)
    step.resolve(DISCONTINUED, SUPERSEDED)
    step.raise_alert(DISCONTINUED, event_id)
    alert_id = st.open_alerts["overdose_risk:discontinued"].alert_id
    due = stop.stopped_at + step.s.post_stop_risk
    step.set(Timer("post_stop", due, "post_stop", {"alert_id": alert_id}))


def _clear_dues(step: Step) -> None:
    st = step.state
    for key in list(st.outstanding):
        step.cancel(f"missed:{key}")
    st.outstanding.clear()
    step.cancel("lapse")


def suspended(step: Step, notice: ev.DateDue, event_id: str) -> None:
    """The schedule is suspended after a procedure (from P+1): nothing more is due,
    no lapse is alerted, and blockade and tolerance are both gone while
    post-operative opioids are likely (tolerance_lost_after_hold). A patient whose
    plan was never seen is adopted: the notice says there was one."""
    adopt(step, None)
    st = step.state
    if st.stopped_at is not None or st.suspended:
        return
    st.suspended = True
    _clear_dues(step)
    step.resolve(BLOCKADE_AT_PROCEDURE)  # the procedure day is over
    step.raise_alert(TOLERANCE_LOST, event_id)
    alert = step.is_open(TOLERANCE_LOST)
    assert alert is not None
    due = step.now + step.s.post_hold_risk
    step.set(Timer("post_hold", due, "post_hold", {"alert_id": alert.alert_id}))


def procedure(step: Step, scheduled: ev.ProcedureScheduled, event_id: str) -> None:
    """A procedure needing opioid analgesia while a recorded dose or injection still
    blocks on its day: the care team needs a pain plan."""
    st = step.state
    if not scheduled.requires_opioid_analgesia or st.coverage_until is None:
        return
    if st.coverage_until > local_midnight_utc(scheduled.date, st.timezone):
        step.raise_alert(BLOCKADE_AT_PROCEDURE, event_id)


def acknowledged(step: Step, ack: ev.AlertAcknowledged, event_id: str) -> None:
    """Exactly the alert named by ``alert_id``; without one, the alerts of that code
    open at this moment, never later ones."""
    for key, alert in list(step.state.open_alerts.items()):
        if (alert.alert_id == ack.alert_id) if ack.alert_id else (alert.alert == ack.alert):
            step.acknowledge(key)


# --- deadlines ---------------------------------------------------------------------


def _same_alert(step: Step, timer: Timer) -> str | None:
    """The key of the open alert a timer was set for (None if it is gone)."""
    wanted = timer.payload.get("alert_id")
    for key, alert in step.state.open_alerts.items():
        if alert.alert_id == wanted or (wanted is None and key == timer.payload.get("alert")):
            return key
    return None


def escalate(step: Step, timer: Timer) -> None:
    key = _same_alert(step, timer)
    alert = step.state.open_alerts.get(key) if key else None
    if key and alert is not None and not alert.acknowledged and not alert.escalated:
        step.escalate(key)


def post_stop(step: Step, timer: Timer) -> None:
    if timer.payload.get("alert_id") is None or _same_alert(step, timer):
        step.resolve(DISCONTINUED)


def post_hold(step: Step, timer: Timer) -> None:
    if _same_alert(step, timer):
        step.resolve(TOLERANCE_LOST)
