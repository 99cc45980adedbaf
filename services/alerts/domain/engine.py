"""The alert engine (DESIGN.md §4.3): pure functions from (state, input, now) to
(new state, events to emit, timers to set or cancel).

Deadlines are timers, so the worker keeps them in PostgreSQL and the replay keeps
them in a heap: the same rules run in both. The rules live in ``doses`` (dues,
administrations, lapses, adoption), ``results`` (screens and liver panels) and
``course`` (plans, stops, holds, procedures, acknowledgements) and ``deliveries``
(what became of the notifications asked for)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.alerts.domain import course, deliveries, doses, results
from services.alerts.domain.lifecycle import Emit, Outcome, Step, Timer
from services.alerts.domain.results import hepatotoxicity_severity
from services.alerts.domain.settings import DEFAULT_SETTINGS, AlertSettings
from services.alerts.domain.state import PatientAlertState

__all__ = [
    "HANDLERS",
    "TIMERS",
    "Emit",
    "Outcome",
    "Timer",
    "handle",
    "hepatotoxicity_severity",
    "on_timer",
]


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
    step = Step(Outcome(current), now, settings)
    handler = HANDLERS.get(event_type)
    if handler is not None:
        handler(step, data, event_id)
    return step.out


HANDLERS: dict[str, Callable[[Step, Any, str], None]] = {
    "ntx.plan.created.v1": course.plan_created,
    "ntx.dose.due.v1": doses.dose_due,
    "ntx.injection.due.v1": doses.injection_due,
    "ntx.dose.held.v1": doses.held,
    "ntx.injection.held.v1": doses.held,
    "ntx.reinduction.required.v1": course.suspended,
    "ntx.dose.administered.v1": doses.dose_given,
    "ntx.injection.administered.v1": doses.injection_given,
    "ntx.dose.not_given.v1": doses.not_given,
    "ntx.uds.resulted.v1": results.screen,
    "ntx.lab.resulted.v1": results.liver,
    "ntx.procedure.scheduled.v1": course.procedure,
    "ntx.treatment.stopped.v1": course.stopped,
    "ntx.alert.acknowledged.v1": course.acknowledged,
    "ntx.notification.delivered.v1": deliveries.delivered,
    "ntx.notification.failed.v1": deliveries.failed,
}


def on_timer(
    state: PatientAlertState,
    timer: Timer,
    now: datetime,
    settings: AlertSettings = DEFAULT_SETTINGS,
    *,
    in_place: bool = False,
) -> Outcome:
    step = Step(Outcome(_own(state, in_place)), now, settings)
    TIMERS[timer.kind](step, timer)
    return step.out


def _own(state: PatientAlertState, in_place: bool) -> PatientAlertState:
    return state if in_place else state.model_copy(deep=True)


TIMERS: dict[str, Callable[[Step, Timer], None]] = {
    "missed_dose": doses.missed,
    "missed_injection": doses.missed,
    "lapse": doses.lapse,
    "escalate": course.escalate,
    "post_stop": course.post_stop,
    "post_hold": course.post_hold,
}
