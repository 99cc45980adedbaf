"""What the health system sends for a simulated patient, day by day: the intake
request, the doses and injections the patient took, and the behaviour's own events
(stops, screens and panels, not-given records, procedures)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from services.demo import ZONE, _event
from services.simulation.cohort import (
    DEFERRED_LAST_USE_DAYS_BEFORE,
    FIRST_DAY,
    SECOND_STOP_AFTER_RESUME,
    STALE_DAYS,
    START,
    XR_HELD_INJECTION_DAY,
    Patient,
    sent_at,
)
from shared.localtime import to_utc


def day_events(p: Patient, n: int, days: int) -> list[dict]:
    """What the health system sends for ``p`` on day ``n`` (at 09:20 local)."""
    at = sent_at(n)
    intake_day = FIRST_DAY if p.behaviour == "adopted" else 0
    if n < intake_day:
        return []
    out = [_intake(p, at, n)] if n in (intake_day, p.resume_day) else []
    return out + _dose(p, n, at) + _extra(p, n, at)


def _dose(p: Patient, n: int, at: datetime) -> list[dict]:
    return _xr_dose(p, n, at) if p.formulation == "xr" else _oral_dose(p, n, at)


def _xr_dose(p: Patient, n: int, at: datetime) -> list[dict]:
    if p.behaviour == "refuse" and n >= p.event_day:
        # refused on day 28, taken on day 29, then every 28 days from there
        since = n - (p.event_day + 1)
        due = since >= 0 and since % 28 == 0
    else:
        late = {"late_1": 1, "late_5": 5}.get(p.behaviour, 0)
        due_day = n - late if n >= late else -1
        due = due_day >= 0 and due_day % 28 == 0
    withheld = {
        "stop": n >= p.event_day,
        "surgery": n >= XR_HELD_INJECTION_DAY,  # held, then suspended
    }.get(p.behaviour, False)
    if due and not withheld:
        return [_event("ntx.injection.administered.v1", at, _given(p, at, 380))]
    return []


def _oral_dose(p: Patient, n: int, at: datetime) -> list[dict]:
    if n < p.first_dose_day:
        return []  # deferred: no plan yet, nothing is due
    procedure = p.procedure_day
    resume = p.resume_day
    skipped = {
        "single_miss": n == p.event_day,
        "adopted": n == p.event_day,
        "refuse": n == p.event_day,
        "gap": p.event_day <= n < p.event_day + 4,
        "dropout": n >= p.event_day,
        "stop": n >= p.event_day,
        "surgery": n in p.held_days or (procedure is not None and n > procedure),
        "late_surgery": procedure is not None and n >= procedure,
        "stop_resume": resume is not None
        and (p.event_day <= n < resume or n >= resume + SECOND_STOP_AFTER_RESUME),
    }.get(p.behaviour, False)
    first = resume if resume is not None and n >= resume else p.first_dose_day
    mg = 25 if n == first else 50
    return [] if skipped else [_event("ntx.dose.administered.v1", at, _given(p, at, mg))]


def _given(p: Patient, at: datetime, mg: int) -> dict:
    return {"patient_id": p.id, "administered_at": at.isoformat(), "dose_mg": mg}


def _extra(p: Patient, n: int, at: datetime) -> list[dict]:
    b = p.behaviour
    if b in ("stop", "stop_resume") and n == p.event_day:
        return [_stop(p, at)]
    resume = p.resume_day
    if resume is not None and n == resume + SECOND_STOP_AFTER_RESUME:
        return [_stop(p, at)]
    if b == "relapse" and n == p.event_day:
        return [_screen(p, at, at, positive=True)]
    if b == "refuse" and n == p.event_day:
        return [_not_given(p, at, n)]
    if b == "surgery" and n == p.event_day and p.procedure_day is not None:
        return [_procedure(p, at, p.procedure_day)]
    if b == "late_surgery" and n == p.event_day + 1:
        return [_procedure(p, at, p.event_day)]  # an emergency, reported the day after
    if b == "stale" and 0 <= n - p.event_day < STALE_DAYS:
        return _stale(p, n - p.event_day, at)
    return []


def _stop(p: Patient, at: datetime) -> dict:
    data = {"patient_id": p.id, "stopped_at": at.isoformat(), "reason": "patient_choice"}
    return _event("ntx.treatment.stopped.v1", at, data)


def _procedure(p: Patient, at: datetime, day: int) -> dict:
    when = START + timedelta(days=day)
    data = {"patient_id": p.id, "date": when.isoformat(), "requires_opioid_analgesia": True}
    return _event("ntx.procedure.scheduled.v1", at, data)


def _not_given(p: Patient, at: datetime, n: int) -> dict:
    """The dose (or injection) due today at 09:00, recorded as refused at 09:20."""
    due = to_utc(datetime.combine(START + timedelta(days=n), time(9, 0)), ZONE)
    data = {
        "patient_id": p.id,
        "due_utc": due.isoformat(),
        "recorded_at": at.isoformat(),
        "kind": "injection" if p.formulation == "xr" else "dose",
        "reason": "patient_refused",
    }
    return _event("ntx.dose.not_given.v1", at, data)


def _screen(p: Patient, at: datetime, collected: datetime, positive: bool) -> dict:
    data = {
        "patient_id": p.id,
        "collected_at": collected.isoformat(),
        "opioids_detected": positive,
        "fentanyl_detected": False,
    }
    return _event("ntx.uds.resulted.v1", at, data)


def _lab(p: Patient, at: datetime, collected: datetime, alt: int) -> dict:
    data = {
        "patient_id": p.id,
        "collected_at": collected.isoformat(),
        "alt": alt,
        "ast": 25,
        "alt_uln": 40,
        "ast_uln": 40,
    }
    return _event("ntx.lab.resulted.v1", at, data)


#: Stale results, by day from the event: (screen positive?, collected days back),
#: (ALT with ULN 40, collected days back). Day 1 carries specimens from the day
#: before the first positive: they arrive late and must change nothing.
STALE_SCRIPT = [
    ((True, 0), (140, 0)),
    ((False, 2), (30, 2)),
    ((True, 0), (140, 0)),
    ((False, 0), (30, 0)),
]


def _stale(p: Patient, k: int, at: datetime) -> list[dict]:
    (positive, screen_back), (alt, lab_back) = STALE_SCRIPT[k]
    collected = at - timedelta(hours=1)
    return [
        _screen(p, at, collected - timedelta(days=screen_back), positive),
        _lab(p, at, collected - timedelta(days=lab_back), alt),
    ]


def _intake(p: Patient, at: datetime, n: int) -> dict:
    """The intake request of day ``n`` (sent two hours before the day's doses)."""
    deferred = p.behaviour == "deferred"
    day = START + timedelta(days=n)
    # the deferred patient's screen is dated START so it is 2 days old (not the 3-day
    # limit) when intake re-checks on START + 2
    checked = (day - timedelta(days=0 if deferred else 1)).isoformat()
    last_use = START - timedelta(days=DEFERRED_LAST_USE_DAYS_BEFORE if deferred else 20)
    data = {
        "patient_id": p.id,
        "timezone": ZONE,
        "formulation": p.formulation,
        "last_opioid_use": {"date": last_use.isoformat(), "opioid": "heroin"},
        "urine_drug_screen": {"date": checked, "opioids_detected": False},
        "naloxone_challenge": {"date": checked, "result": "negative"},
        "liver_function": {"date": checked, "alt": 30, "ast": 25, "alt_uln": 40, "ast_uln": 40},
    }
    return _event("ntx.intake.requested.v1", at - timedelta(hours=2), data)
