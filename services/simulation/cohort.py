"""A seeded synthetic cohort: who the patients are and how each behaves (what the
health system sends for them is in :mod:`services.simulation.sends`).

Behaviours, chosen per patient from the seed. Oral: adherent; an occasional single
missed dose; a four-day gap (a lapse); drop-out (stops dosing, no word to the
program); stop (the program records treatment.stopped); relapse (a positive urine
screen); surgery (a procedure needing opioid analgesia, announced four days ahead:
the doses held before it are not taken, nothing after); deferred (last use five days
before the start: intake defers to the end of the seven-day window, re-checks and
accepts); refuse (one dose recorded as not given); late surgery (an emergency
operation reported the day after it happened: the doses due meanwhile were not
taken); stop and resume (a stop, a new intake five days later, a second stop twenty
days after that); stale results (screens and liver panels arriving out of specimen
order); adopted (enrolled the day before the alerts service was deployed, which
never sees the plan; one missed dose later). XR: adherent; each injection a day late
(no alert) or five days late (missed injection, no lapse); stop; surgery (the
injection due before it is held); refuse (the day-28 injection recorded as not
given, taken the next day). Gaps and dates avoid the exact rule boundaries so the
expectation is unambiguous.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property

from services.demo import ZONE
from services.intake.domain.settings import DEFAULT_SETTINGS as INTAKE_SETTINGS
from shared.localtime import local_midnight_utc, to_utc

START = date(2026, 3, 2)
#: The day before START: adopted patients enrol, the alerts service not yet running.
FIRST_DAY = -1
SEND_AT = time(9, 20)
BEHAVIOURS = {
    "oral": [
        ("adherent", 40),
        ("single_miss", 20),
        ("gap", 15),
        ("dropout", 10),
        ("stop", 5),
        ("relapse", 10),
        ("surgery", 8),
        ("deferred", 8),
        ("refuse", 8),
        ("late_surgery", 6),
        ("stop_resume", 6),
        ("stale", 8),
        ("adopted", 6),
    ],
    "xr": [
        ("adherent", 50),
        ("late_1", 20),
        ("late_5", 20),
        ("stop", 10),
        ("surgery", 10),
        ("refuse", 8),
    ],
}
#: Oral surgery: the procedure is 4 days after the notice, so the first held dose
#: (3 days before the procedure) is the next day's, not one already due.
ORAL_PROCEDURE_AFTER_NOTICE = 4
#: XR surgery: the second injection (day 28) is held; the procedure is 5 days after
#: it (well inside the 30-day hold window, and the day-0 injection, 33 days before,
#: well outside). The notice comes on a day in [2, 27], before that injection is due.
XR_HELD_INJECTION_DAY = 28
XR_PROCEDURE_AFTER_HELD = 5
#: The procedure and the re-induction notice the day after fall inside the run (the
#: notice at least a day before its end), so XR surgery needs a run this long.
XR_SURGERY_MIN_DAYS = XR_HELD_INJECTION_DAY + XR_PROCEDURE_AFTER_HELD + 2
#: XR refuse: the day-28 injection is refused and given the next day.
XR_REFUSED_DAY = 28
XR_REFUSE_MIN_DAYS = XR_REFUSED_DAY + 2
#: Deferred: last heroin use 5 days before START with a 7-day window: intake re-checks
#: and accepts on START + 2 (the urine screen is dated START, so still fresh then).
DEFERRED_LAST_USE_DAYS_BEFORE = 5
DEFERRED_START_DAY = INTAKE_SETTINGS.short_acting_free_days - DEFERRED_LAST_USE_DAYS_BEFORE
#: Stop and resume: a new intake this many days after the stop, a second stop this
#: many days after resuming (if the run lasts that long).
RESUME_AFTER_STOP = 5
SECOND_STOP_AFTER_RESUME = 20
#: Stale results: positive, stale negative, positive again, negative, a day apart.
STALE_DAYS = 4


#: Days a behaviour's events take after its event day (the last must be inside the
#: run); surgery and stop-and-resume are checked by their own rules.
EVENT_SPAN = {
    "late_surgery": 1,
    "stale": STALE_DAYS - 1,
    "surgery": ORAL_PROCEDURE_AFTER_NOTICE + 1,
}


@dataclass
class Patient:
    id: str
    formulation: str
    behaviour: str
    event_day: int
    expected: set[tuple[str, str]] = field(default_factory=set)

    @property
    def procedure_day(self) -> int | None:
        """Surgery: the run day of the procedure (planned: notice on ``event_day``;
        late: on ``event_day`` itself, reported the day after)."""
        if self.behaviour == "late_surgery":
            return self.event_day
        if self.behaviour != "surgery":
            return None
        if self.formulation == "xr":
            return XR_HELD_INJECTION_DAY + XR_PROCEDURE_AFTER_HELD
        return self.event_day + ORAL_PROCEDURE_AFTER_NOTICE

    @property
    def first_dose_day(self) -> int:
        return {"deferred": DEFERRED_START_DAY, "adopted": FIRST_DAY}.get(self.behaviour, 0)

    @property
    def resume_day(self) -> int | None:
        return self.event_day + RESUME_AFTER_STOP if self.behaviour == "stop_resume" else None

    @cached_property
    def held_days(self) -> frozenset[int]:
        """Oral surgery: the run days whose doses the schedule rules hold (P-3 to P,
        and P-4 when its blockade outlasts P-3's dose time across a DST change)."""
        if self.behaviour != "surgery" or self.formulation != "oral":
            return frozenset()
        from services.simulation.schedule import held_dose_days

        return held_dose_days(self)


def cohort(n: int, days: int, seed: int) -> list[Patient]:
    """A pure function of its arguments (no other source of randomness). XR surgery and
    XR refuse become adherent in a run too short for their day-28 injection."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        formulation = rng.choice(["oral", "xr"])
        names, weights = zip(*BEHAVIOURS[formulation], strict=True)
        behaviour = rng.choices(names, weights)[0]
        event_day = rng.randint(2, max(2, days - 6))
        if formulation == "xr" and behaviour == "surgery":
            if days < XR_SURGERY_MIN_DAYS:
                behaviour = "adherent"
            else:
                event_day = 2 + (event_day - 2) % (XR_HELD_INJECTION_DAY - 2)  # before day 28
        if formulation == "xr" and behaviour == "refuse":
            behaviour, event_day = (
                ("adherent", event_day) if days < XR_REFUSE_MIN_DAYS else ("refuse", XR_REFUSED_DAY)
            )
        if event_day + EVENT_SPAN.get(behaviour, 0) >= days:
            behaviour = "adherent"  # a run too short for the behaviour to play out
        out.append(Patient(f"sim-{seed}-{i:05d}", formulation, behaviour, event_day))
    return out


def sent_at(n: int) -> datetime:
    """When the health system sends day ``n``'s events: 09:20 local."""
    return to_utc(datetime.combine(START + timedelta(days=n), SEND_AT), ZONE)


def run_end(days: int) -> datetime:
    """The run ends at 00:00 after its last day."""
    return local_midnight_utc(START + timedelta(days=days), ZONE)
