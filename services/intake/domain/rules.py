"""Intake decision (DESIGN.md §4.1): every reason that applies, in the table's order;
rejected beats deferred beats accepted. Pure: the worker, the CLI and the tests all
call :func:`evaluate`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from services.intake.domain.settings import DEFAULT_SETTINGS, RULESET_VERSION, IntakeSettings
from shared.events import IntakeDecided, IntakeRequested, LiverFunction, Reason, TreatmentPlan

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


class IntakeInputError(ValueError):
    """Input that is well-formed but cannot be evaluated (e.g. a date in the future)."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


@dataclass(frozen=True)
class Finding:
    code: str
    outcome: str  # "rejected" | "deferred"
    message: str
    earliest: date | None = None


def check_request(req: IntakeRequested, as_of: date) -> None:
    """Observations cannot postdate the evaluation; planned procedures may."""
    dated = {
        "last_opioid_use.date": req.last_opioid_use.date,
        "urine_drug_screen.date": req.urine_drug_screen and req.urine_drug_screen.date,
        "naloxone_challenge.date": req.naloxone_challenge and req.naloxone_challenge.date,
        "liver_function.date": req.liver_function and req.liver_function.date,
    }
    errors = [
        (f, f"after the evaluation date {as_of}") for f, d in dated.items() if d and d > as_of
    ]
    if errors:
        raise IntakeInputError(errors)


def evaluate(
    req: IntakeRequested, as_of: date, settings: IntakeSettings = DEFAULT_SETTINGS
) -> IntakeDecided:
    check_request(req, as_of)
    findings = list(_findings(req, as_of, settings))
    advisories = list(_advisories(req, settings))
    outcome = _outcome(findings)
    return IntakeDecided(
        patient_id=req.patient_id,
        decision=outcome,
        reasons=[Reason(code=f.code, message=f.message) for f in findings],
        earliest_start_date=_earliest(findings) if outcome == "deferred" else None,
        advisories=advisories,
        plan=_plan(req, as_of, advisories, settings) if outcome == "accepted" else None,
        as_of=as_of,
        ruleset_version=RULESET_VERSION,
    )


Decision = Literal["accepted", "deferred", "rejected"]


def _outcome(findings: list[Finding]) -> Decision:
    outcomes = {f.outcome for f in findings}
    return "rejected" if "rejected" in outcomes else "deferred" if outcomes else "accepted"


def _earliest(findings: list[Finding]) -> date | None:
    """The latest dated start; unknown if any deferral has no date."""
    dates = [f.earliest for f in findings if f.outcome == "deferred"]
    return None if any(d is None for d in dates) else max(dates)  # type: ignore[type-var]


# --- the §4.1 table, in order ----------------------------------------------------


def _findings(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    for rule in RULES:
        yield from rule(req, as_of, s)


def _conditions(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    for code in REJECTING_CONDITIONS:
        if code in req.conditions:
            yield Finding(code, "rejected", CONDITION_MESSAGES[code])


def _transaminases(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    if req.liver_function and uln_multiple(req.liver_function) >= s.transaminase_reject_multiple:
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


def _opioid_free_window(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    use = req.last_opioid_use
    if use.opioid == "buprenorphine_xr":
        return
    window = s.long_acting_free_days if use.opioid in LONG_ACTING else s.short_acting_free_days
    days = (as_of - use.date).days
    if days < window:
        yield Finding(
            "opioid_free_window_not_met",
            "deferred",
            f"{days} opioid-free days of the {window} required",
            use.date + timedelta(days=window),
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


def _naloxone(req: IntakeRequested, as_of: date, s: IntakeSettings) -> Iterator[Finding]:
    challenge = req.naloxone_challenge
    if challenge is not None and challenge.result == "positive":
        yield Finding(
            "naloxone_challenge_positive",
            "deferred",
            "the naloxone challenge precipitated withdrawal",
            challenge.date + timedelta(days=s.naloxone_retry_days),
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
    window = s.procedure_window_xr_days if req.formulation == "xr" else s.procedure_window_oral_days
    within = [
        p.date
        for p in req.planned_procedures
        if p.requires_opioid_analgesia and 0 <= (p.date - as_of).days <= window
    ]
    if within:
        yield Finding(
            "procedure_within_hold_window",
            "deferred",
            f"a procedure needing opioid analgesia within {window} days",
            max(within) + timedelta(days=1),
        )


Rule = Callable[[IntakeRequested, date, IntakeSettings], Iterator[Finding]]
RULES: tuple[Rule, ...] = (
    _conditions,
    _transaminases,
    _depot_buprenorphine,
    _opioid_free_window,
    _urine_screen,
    _naloxone,
    _baseline_lft,
    _procedures,
)


# --- advisories and the plan ---------------------------------------------------------


def uln_multiple(panel: LiverFunction) -> Decimal:
    """The higher of ALT/ULN and AST/ULN, exact (Decimal, never float)."""
    return max(panel.alt / panel.alt_uln, panel.ast / panel.ast_uln)


def _advisories(req: IntakeRequested, s: IntakeSettings) -> Iterator[str]:
    if req.liver_function and uln_multiple(req.liver_function) >= s.transaminase_advisory_multiple:
        yield "transaminases_over_3x_uln"
    if req.formulation == "oral":
        yield "oral_guideline_caution"
    if req.psychosocial is not None:
        flags = req.psychosocial.model_dump().values()
        if sum(1 for v in flags if v is False) >= s.discontinuation_risk_flags:
            yield "high_discontinuation_risk"
    for condition, code in (
        ("alcohol_use_disorder", "alcohol_use_disorder_benefit"),
        ("pregnancy", "pregnancy_clinician_review"),
        ("depression", "depression_monitoring"),
    ):
        if condition in req.conditions:
            yield code
    yield "naloxone_kit_recommended"


def _plan(
    req: IntakeRequested, as_of: date, advisories: list[str], s: IntakeSettings
) -> TreatmentPlan:
    oral = req.formulation == "oral"
    elevated = "transaminases_over_3x_uln" in advisories
    return TreatmentPlan(
        patient_id=req.patient_id,
        timezone=req.timezone,
        formulation=req.formulation,
        oral_regimen=(req.oral_regimen or "daily") if oral else None,
        induction_days=(
            req.induction_days if req.induction_days is not None else s.default_induction_days
        )
        if oral
        else None,
        dose_time=req.dose_time,
        start_date=as_of,
        lft_interval_months=s.lft_interval_months_elevated if elevated else s.lft_interval_months,
        uds_interval_days=s.uds_interval_days,
        review_after_months=s.review_after_months,
        planned_procedures=req.planned_procedures,
        advisories=advisories,
        consent=req.consent,
    )


def decision_json(decided: IntakeDecided) -> dict:
    """The §6 CLI shape."""
    d = decided.model_dump(mode="json")
    return {k: d[k] for k in ("decision", "reasons", "earliest_start_date", "advisories", "plan")}


def decision_event_type(decided: IntakeDecided) -> str:
    return f"ntx.intake.{decided.decision}.v1"
