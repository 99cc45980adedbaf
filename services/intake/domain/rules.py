"""Intake decision (DESIGN.md §4.1): every reason that applies, in the table's order;
rejected beats deferred beats accepted. Pure: the worker, the CLI and the tests all
call :func:`evaluate` (or :func:`decide`, which also says what a clinician overrode)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Literal

from services.intake.domain.plan import advisories, plan_for
from services.intake.domain.settings import DEFAULT_SETTINGS, RULESET_VERSION, IntakeSettings
from services.intake.domain.timing import (
    Finding,
    IntakeInputError,
    check_request,
    earliest_start,
    later,
    procedure_start,
    procedure_window,
)
from shared.events import IntakeDecided, IntakeRequested, Reason

__all__ = ["Decided", "Decision", "IntakeInputError", "decide", "evaluate"]

LONG_ACTING = frozenset({"methadone", "buprenorphine"})
REJECTING_CONDITIONS = (
    "acute_hepatitis",
    "liver_failure",
    "opioid_analgesic_required",
    "naltrexone_hypersensitivity",
)
CONDITION_MESSAGES = {
    "acute_hepatitis": "acute hepatitis is a contraindication",
    "liver_failure": "liver failure is a contraindication",
    "opioid_analgesic_required": "needs opioid analgesics, which naltrexone blocks",
    "naltrexone_hypersensitivity": "hypersensitivity to naltrexone",
}

Decision = Literal["accepted", "deferred", "rejected"]


@dataclass(frozen=True)
class Decided:
    """A decision and the reasons a clinician's override lifted (for the audit)."""

    decided: IntakeDecided
    overridden: list[str]


def evaluate(
    req: IntakeRequested, as_of: date, settings: IntakeSettings = DEFAULT_SETTINGS
) -> IntakeDecided:
    return decide(req, as_of, settings).decided


def decide(
    req: IntakeRequested, as_of: date, settings: IntakeSettings = DEFAULT_SETTINGS
) -> Decided:
    check_request(req, as_of)
    found = [f for rule in RULES for f in rule(req, as_of, settings)]
    lifted = set(req.clinician_override.codes) if req.clinician_override else set()
    findings = [f for f in found if f.code not in lifted]
    overridden = [f.code for f in found if f.code in lifted]
    notes = list(advisories(req, bool(overridden), settings))
    outcome = _outcome(findings)
    decided = IntakeDecided(
        patient_id=req.patient_id,
        decision=outcome,
        reasons=[Reason(code=f.code, message=f.message) for f in findings],
        earliest_start_date=(
            earliest_start(findings, req, as_of, settings) if outcome == "deferred" else None
        ),
        advisories=notes,
        plan=plan_for(req, as_of, notes, settings) if outcome == "accepted" else None,
        as_of=as_of,
        ruleset_version=RULESET_VERSION,
    )
    return Decided(decided, overridden)


def _outcome(findings: list[Finding]) -> Decision:
    outcomes = {f.outcome for f in findings}
    return "rejected" if "rejected" in outcomes else "deferred" if outcomes else "accepted"


# --- the §4.1 table, in order ----------------------------------------------------


def _conditions(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    for code in REJECTING_CONDITIONS:
        if code in req.conditions:
            yield Finding(code, "rejected", CONDITION_MESSAGES[code])


def _transaminases(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    panel = req.liver_function
    if panel and panel.uln_multiple >= s.transaminase_reject_multiple:
        yield Finding(
            "transaminases_over_5x_uln",
            "rejected",
            f"ALT or AST at or above {s.transaminase_reject_multiple}x the upper limit of normal",
        )


def _depot_buprenorphine(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    if req.last_opioid_use.opioid == "buprenorphine_xr":
        yield Finding(
            "depot_buprenorphine_requires_clinician",
            "deferred",
            "extended-release buprenorphine: the washout needs a clinician's judgement",
        )


def _pregnancy(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    if "pregnancy" in req.conditions:
        yield Finding(
            "pregnancy_clinician_review",
            "deferred",
            "pregnancy: agonist treatment is usually preferred; needs a clinician's review",
        )


def _opioid_free_window(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    use = req.last_opioid_use
    if use.opioid == "buprenorphine_xr":
        return
    window = (
        s.long_acting_free_days
        if use.opioid in LONG_ACTING
        else s.fentanyl_free_days
        if use.opioid == "fentanyl"
        else s.short_acting_free_days
    )
    days = (as_of - use.date).days
    if days < window:
        yield Finding(
            "opioid_free_window_not_met",
            "deferred",
            f"{days} opioid-free days of the {window} required",
            later(use.date, window, "last_opioid_use.date"),
        )


def _urine_screen(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    screen = req.urine_drug_screen
    if screen is None or (as_of - screen.date).days > s.urine_screen_max_age_days:
        yield Finding(
            "urine_screen_missing_or_stale",
            "deferred",
            f"needs a urine drug screen from the last {s.urine_screen_max_age_days} days",
        )
    if screen is not None and screen.opioids_detected:
        yield Finding("urine_opioid_positive", "deferred", "the urine drug screen detected opioids")


def _fentanyl_screen(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    screen = req.urine_drug_screen
    tested = screen is not None and screen.fentanyl_detected is not None
    if req.last_opioid_use.opioid == "fentanyl" and not tested:
        yield Finding(
            "fentanyl_screen_missing",
            "deferred",
            "last use was fentanyl: the screen must test for fentanyl (opiate assays miss it)",
        )
    if screen is not None and screen.fentanyl_detected is True:
        yield Finding("urine_fentanyl_positive", "deferred", "the urine screen detected fentanyl")


def _naloxone(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    challenge = req.naloxone_challenge
    if challenge is not None and challenge.result == "positive":
        retry = later(challenge.date, s.naloxone_retry_days, "naloxone_challenge.date")
        yield Finding(
            "naloxone_challenge_positive",
            "deferred",
            "the naloxone challenge precipitated withdrawal",
            max(retry, as_of),
        )
    recent_negative = (
        challenge is not None
        and challenge.result == "negative"
        and (as_of - challenge.date).days <= s.naloxone_challenge_max_age_days
    )
    if req.last_opioid_use.opioid == "fentanyl" and not recent_negative:
        yield Finding(
            "naloxone_challenge_required",
            "deferred",
            f"last use was fentanyl: needs a negative naloxone challenge from the last"
            f" {s.naloxone_challenge_max_age_days} days",
        )


def _baseline_lft(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    panel = req.liver_function
    if panel is None or (as_of - panel.date).days > s.liver_panel_max_age_days:
        yield Finding(
            "baseline_lft_missing_or_stale",
            "deferred",
            f"needs liver function tests from the last {s.liver_panel_max_age_days} days",
        )


def _procedures(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    start = procedure_start(req, as_of, s)
    if start is not None:
        yield Finding(
            "procedure_within_hold_window",
            "deferred",
            f"a procedure needing opioid analgesia within {procedure_window(req, s)} days",
            start,
        )


Rule = Callable[[IntakeRequested, date, IntakeSettings], Iterator[Finding]]
RULES: tuple[Rule, ...] = (
    _conditions,
    _transaminases,
    _depot_buprenorphine,
    _pregnancy,
    _opioid_free_window,
    _urine_screen,
    _fentanyl_screen,
    _naloxone,
    _baseline_lft,
    _procedures,
)
