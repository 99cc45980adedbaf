"""What the schedule rules hold for a simulated patient: the simulator's patients
take nothing held, so which days those are comes from the rules themselves."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from services.demo import ZONE
from services.intake.domain.rules import evaluate
from services.scheduler.domain import apply_procedure, due_items, new_state
from shared.events import IntakeRequested, ProcedureScheduled
from shared.localtime import local_midnight_utc, local_today

if TYPE_CHECKING:
    from services.simulation.cohort import Patient


def held_dose_days(p: Patient) -> frozenset[int]:
    from services.simulation.cohort import START, sent_at
    from services.simulation.sends import _intake, _procedure

    assert p.procedure_day is not None
    request = IntakeRequested.model_validate_json(json.dumps(_intake(p, sent_at(0), 0)["data"]))
    plan = evaluate(request, START).plan
    assert plan is not None
    notice = _procedure(p, sent_at(p.event_day), p.procedure_day)["data"]
    state = apply_procedure(
        new_state(plan),
        ProcedureScheduled.model_validate_json(json.dumps(notice)),
        sent_at(p.event_day),
    )
    begin = local_midnight_utc(START, ZONE)
    end = local_midnight_utc(START + timedelta(days=p.procedure_day + 1), ZONE)
    # a dose already due when the notice arrives (its day's 09:00, before the 09:20
    # notice) was emitted as due, and taken: only later days can be held
    return frozenset(
        day
        for item in due_items(state, begin, end)
        if item.type == "ntx.dose.held.v1"
        and (day := (local_today(item.due_utc, ZONE) - START).days) > p.event_day
    )
