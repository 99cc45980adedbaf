"""Doses and injections against what fell due (DESIGN.md §4.3): deadlines for
missed doses, the blockade-lapse clock (never-started patients included), doses
recorded as not given, and the adoption of patients whose plan was never seen."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.alerts.domain.lifecycle import (
    BLOCKADE_LAPSED,
    DISCONTINUED,
    DOSE_NOT_GIVEN,
    INJECTION_NOT_GIVEN,
    MISSED_DOSE,
    MISSED_INJECTION,
    TOLERANCE_LOST,
    Spec,
    Step,
    Timer,
)
from services.alerts.domain.settings import AlertSettings
from services.alerts.domain.state import Administration, Outstanding
from shared import events as ev
from shared.types import format_utc

#: The formulation an adopted patient is taken to be on, by what adopted them.
ADOPTED_FORMULATION = {"dose": "oral", "injection": "xr"}


def adopt(step: Step, kind: str | None) -> None:
    """A due, administration or not-given record (or a re-induction notice: the
    patient was under a plan) for a patient whose plan this service never saw
    (deployed later, retention passed, a restore): under treatment from now on, oral
    for doses and XR for injections (unknown for a notice), consent unknown. Nothing
    clinical is dropped silently (DESIGN.md §4.3 r2)."""
    st = step.state
    if st.has_plan or st.stopped_at is not None:
        return
    st.has_plan = st.adopted = True
    st.formulation = ADOPTED_FORMULATION.get(kind or "")
    st.notify_patient = st.notify_external = False
    step.out.adopted = True


def dose_due(step: Step, due: ev.DoseDue, event_id: str) -> None:
    expect(step, "dose", due.due_utc)


def injection_due(step: Step, due: ev.InjectionDue, event_id: str) -> None:
    expect(step, "injection", due.due_utc)


def expect(step: Step, kind: str, due_utc: datetime) -> None:
    adopt(step, kind)
    st = step.state
    if not st.active:
        return
    st.on_hold = False  # a regular due ends any surgical hold
    if not st.dosed_since_plan and st.first_due_at is None:
        st.first_due_at = due_utc  # never started: the lapse clock runs from here
        set_lapse_timer(step)
    grace = grace_for(step.s, kind)
    if _declined(step, kind, due_utc) or _already_given(step, kind, due_utc, grace):
        return
    key = f"{kind}:{format_utc(due_utc)}"
    st.outstanding[key] = Outstanding(kind=kind, due_utc=due_utc)
    step.set(Timer(f"missed:{key}", due_utc + grace, f"missed_{kind}", {"outstanding": key}))


def _already_given(step: Step, kind: str, due_utc: datetime, grace: timedelta) -> bool:
    """A due that arrives after the administration that settles it is not missed."""
    for given in step.state.unmatched:
        if given.kind == kind and due_utc - step.s.early_administration <= given.at <= (
            due_utc + grace
        ):
            step.state.unmatched.remove(given)
            return True
    return False


def _declined(step: Step, kind: str, due_utc: datetime) -> bool:
    """A due recorded as not given before its due event arrived (already alerted)."""
    for record in step.state.declined:
        if record.kind == kind and record.at == due_utc:
            step.state.declined.remove(record)
            return True
    return False


def held(step: Step, data: object, event_id: str) -> None:
    """Held doses are planned, never missed, and no lapse is alerted meanwhile."""
    step.state.on_hold = True


def dose_given(step: Step, given: ev.DoseAdministered, event_id: str) -> None:
    administered(step, "dose", given.administered_at, given.dose_mg)


def injection_given(step: Step, given: ev.InjectionAdministered, event_id: str) -> None:
    administered(step, "injection", given.administered_at, given.dose_mg)


def administered(step: Step, kind: str, at: datetime, dose_mg: int) -> None:
    adopt(step, kind)
    st = step.state
    end = at + step.s.coverage(dose_mg, injection=kind == "injection")
    st.coverage_until = max(st.coverage_until or end, end)
    st.last_dose_at = max(st.last_dose_at or at, at)
    st.dosed_since_plan = True
    _settle_due(step, kind, at)
    for spec in missed_specs(kind):
        step.resolve(spec)
    step.resolve(BLOCKADE_LAPSED)
    if st.active and st.restoring:
        restored(step)
    if st.active:
        set_lapse_timer(step)


def restored(step: Step) -> None:
    """Blockade restored under a new plan: the post-stop and post-hold risks end."""
    step.state.restoring = False
    for spec, timer in ((DISCONTINUED, "post_stop"), (TOLERANCE_LOST, "post_hold")):
        step.resolve(spec)
        step.cancel(timer)


def set_lapse_timer(step: Step) -> None:
    base = step.state.lapse_base
    if base is not None:
        step.set(Timer("lapse", base + lapse_grace(step), "lapse"))


def _settle_due(step: Step, kind: str, at: datetime) -> None:
    """An administration settles the nearest due whose window holds it (up to 12 h
    early, or late until that due's deadline) and passes over older ones for good,
    so a patient who resumes is not reported missing the day after. With no due in
    reach it waits (unmatched) for one that may still be on its way: due events and
    administrations travel on different topics, in either order."""
    st = step.state
    grace = grace_for(step.s, kind)
    settled = _nearest(step, kind, at)
    if settled is None:
        kept = [g for g in st.unmatched if g.at >= at - step.s.unmatched_kept_for]
        st.unmatched = [*kept, Administration(kind=kind, at=at)]
        return
    for key, o in list(st.outstanding.items()):
        if o.kind == kind and o.due_utc <= settled.due_utc:
            del st.outstanding[key]
            step.cancel(f"missed:{key}")
            if o.due_utc + grace < at:  # its deadline passed before this dose: missed
                # (raised as its deadline would have; the caller resolves it)
                step.raise_alert(missed_spec(kind), f"missed:{key}")


def _nearest(step: Step, kind: str, at: datetime) -> Outstanding | None:
    grace = grace_for(step.s, kind)
    candidates = [
        (abs(o.due_utc - at), key)
        for key, o in step.state.outstanding.items()
        if o.kind == kind and o.due_utc - step.s.early_administration <= at <= o.due_utc + grace
    ]
    return step.state.outstanding[min(candidates)[1]] if candidates else None


def not_given(step: Step, record: ev.DoseNotGiven, event_id: str) -> None:
    """A dose or injection recorded as not given is missed at once (DESIGN.md §4.3
    r2); the due it names (or the nearest one in reach) is settled, so its deadline
    raises nothing more."""
    adopt(step, record.kind)
    st = step.state
    if not st.active:
        return
    if not st.dosed_since_plan and st.first_due_at is None:
        st.first_due_at = record.due_utc or record.recorded_at  # never started
        set_lapse_timer(step)
    if record.due_utc is not None:
        key = f"{record.kind}:{format_utc(record.due_utc)}"
        if st.outstanding.pop(key, None) is not None:
            step.cancel(f"missed:{key}")
        else:
            kept = [d for d in st.declined if d.at >= step.now - step.s.unmatched_kept_for]
            st.declined = [*kept, Administration(kind=record.kind, at=record.due_utc)]
    else:
        due = _nearest(step, record.kind, record.recorded_at)
        if due is not None:
            key = f"{record.kind}:{format_utc(due.due_utc)}"
            del st.outstanding[key]
            step.cancel(f"missed:{key}")
    step.raise_alert(DOSE_NOT_GIVEN if record.kind == "dose" else INJECTION_NOT_GIVEN, event_id)


def missed_spec(kind: str) -> Spec:
    return MISSED_DOSE if kind == "dose" else MISSED_INJECTION


def missed_specs(kind: str) -> tuple[Spec, Spec]:
    return (
        (MISSED_DOSE, DOSE_NOT_GIVEN)
        if kind == "dose"
        else (
            MISSED_INJECTION,
            INJECTION_NOT_GIVEN,
        )
    )


def grace_for(s: AlertSettings, kind: str) -> timedelta:
    return s.missed_dose_after if kind == "dose" else s.missed_injection_after


def lapse_grace(step: Step) -> timedelta:
    return step.s.lapse_grace_xr if step.state.formulation == "xr" else step.s.lapse_grace_oral


# --- deadlines ---------------------------------------------------------------------------


def missed(step: Step, timer: Timer) -> None:
    """The deadline passed with the due unsettled: missed for good. If a dose was
    recorded since (it was handled before this deadline fired), the cause is already
    gone and the alert resolves at once."""
    st = step.state
    due = st.outstanding.pop(timer.payload["outstanding"], None)
    if due is None or not st.active:
        return
    spec = missed_spec(due.kind)
    step.raise_alert(spec, timer.key)
    if any(g.kind == due.kind and g.at > due.due_utc for g in st.unmatched):
        step.resolve(spec)


def lapse(step: Step, timer: Timer) -> None:
    st = step.state
    base = st.lapse_base
    if not st.active or st.on_hold or base is None:
        return
    if base + lapse_grace(step) <= step.now:
        step.raise_alert(BLOCKADE_LAPSED, f"lapse:{format_utc(base)}")
