"""The alerts the simulator caused, from what it made each patient do: how many of
each (code, reason) must be raised, no more, no fewer. The run ends at 00:00 after
its last day; an alert needs its moment inside the run."""

from __future__ import annotations

from collections import Counter

from services.simulation.cohort import RESUME_AFTER_STOP, SECOND_STOP_AFTER_RESUME, Patient

MISSED_DOSE = ("missed_dose", "dose_not_recorded")
MISSED_INJECTION = ("missed_injection", "injection_not_recorded")
LAPSED = ("overdose_risk", "blockade_lapsed")
DISCONTINUED = ("overdose_risk", "discontinued")
TOLERANCE_LOST = ("overdose_risk", "tolerance_lost_after_hold")
OPIOID_USE = ("opioid_use_detected", "urine_screen_positive")
HEPATOTOXICITY = ("hepatotoxicity", "transaminases_elevated")
BLOCKADE_AT_PROCEDURE = ("blockade_at_procedure", "covered_on_procedure_day")
DOSE_NOT_GIVEN = ("missed_dose", "dose_not_given")
INJECTION_NOT_GIVEN = ("missed_injection", "dose_not_given")


def ground_truth(p: Patient, days: int) -> Counter[tuple[str, str]]:
    left = days - p.event_day  # days from the event to the end of the run
    b = p.behaviour
    expected: Counter[tuple[str, str]] = Counter()
    if b in ("single_miss", "gap", "dropout", "adopted") and left >= 1:
        expected[MISSED_DOSE] += 1  # one open alert however many doses follow it
    if b in ("gap", "dropout") and left >= 3:
        expected[LAPSED] += 1  # last dose + 24 h + 48 h
    if b == "stop":
        expected[DISCONTINUED] += 1
    if b == "stop_resume":
        # a new episode each stop; the first resolved when the resumed dose restores
        # blockade, so the second is raised (and notified) anew
        second = p.event_day + RESUME_AFTER_STOP + SECOND_STOP_AFTER_RESUME
        expected[DISCONTINUED] += 1 + (second < days)
    if b == "relapse":
        expected[OPIOID_USE] += 1
    if b == "stale":  # the stale negatives resolve nothing, so nothing is raised twice
        expected[OPIOID_USE] += 1
        expected[HEPATOTOXICITY] += 1
    if b == "refuse":
        expected[DOSE_NOT_GIVEN if p.formulation == "oral" else INJECTION_NOT_GIVEN] += 1
    if b == "late_5" and days > 3:
        expected[MISSED_INJECTION] += 1  # the first one, 72 h
    if b == "surgery":
        # held doses and injections are never missed, and no lapse is alerted while
        # held or suspended; from the day after the procedure blockade and tolerance
        # are both gone
        expected[TOLERANCE_LOST] += 1
    if b == "late_surgery":
        # the dose due on the day of the emergency was not taken (missed); the day
        # before's dose still blocked on it; the report comes once P+1 has begun
        expected[MISSED_DOSE] += 1
        expected[BLOCKADE_AT_PROCEDURE] += 1
        expected[TOLERANCE_LOST] += 1
    # adherent, late_1, deferred: nothing. adopted: its plan is never seen by the
    # alerts service, which adopts the patient; the missed dose is alerted all the same.
    return expected


def check(patients: list[Patient], alerts: list[dict], days: int) -> dict[str, list]:
    """Raised alerts against the ground truth, counting repeats (a second episode
    must raise again; a stale result must not raise twice)."""
    raised = Counter(
        (e["subject"], e["data"]["alert"], e["data"]["reason"])
        for e in alerts
        if e["type"] == "ntx.alert.raised.v1"
    )
    expected: Counter[tuple[str, str, str]] = Counter()
    for p in patients:
        for (alert, reason), n in ground_truth(p, days).items():
            expected[(p.id, alert, reason)] += n
    return {
        "missed": sorted((expected - raised).elements()),
        "spurious": sorted((raised - expected).elements()),
    }
