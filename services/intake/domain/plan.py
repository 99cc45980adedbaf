"""What travels with a decision besides its reasons (DESIGN.md §4.1, §3.2): the
advisory flags, which never change the outcome, and an accepted request's plan."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from services.intake.domain.settings import IntakeSettings
from shared.events import IntakeRequested, TreatmentPlan

#: Condition codes that travel as advisories, in the §4.1 advisory order.
ADVISORY_CONDITIONS = {
    "alcohol_use_disorder": "alcohol_use_disorder_benefit",
    "depression": "depression_monitoring",
}


def advisories(req: IntakeRequested, overridden: bool, s: IntakeSettings) -> Iterator[str]:
    """In the §4.1 order: transaminases, oral caution, discontinuation risk, agonist
    treatment failed, alcohol, clinician override, depression, naloxone kit."""
    panel = req.liver_function
    if panel and panel.uln_multiple >= s.transaminase_advisory_multiple:
        yield "transaminases_over_3x_uln"
    if req.formulation == "oral":
        yield "oral_guideline_caution"
    social = req.psychosocial
    if social is not None:
        missing = [social.stable_support, social.employed, social.low_craving].count(False)
        if missing >= s.discontinuation_risk_flags:
            yield "high_discontinuation_risk"
        if social.failed_agonist_treatment is True:
            yield "agonist_treatment_failed"  # an indication for naltrexone, not a risk
    if "alcohol_use_disorder" in req.conditions:
        yield ADVISORY_CONDITIONS["alcohol_use_disorder"]
    if overridden:
        yield "clinician_override"
    if "depression" in req.conditions:
        yield ADVISORY_CONDITIONS["depression"]
    yield "naloxone_kit_recommended"


def plan_for(
    req: IntakeRequested, as_of: date, notes: list[str], s: IntakeSettings
) -> TreatmentPlan:
    """The plan of an accepted request; it starts on the evaluation date."""
    oral = req.formulation == "oral"
    elevated = "transaminases_over_3x_uln" in notes
    induction = req.induction_days if req.induction_days is not None else s.default_induction_days
    return TreatmentPlan(
        patient_id=req.patient_id,
        timezone=req.timezone,
        formulation=req.formulation,
        oral_regimen=(req.oral_regimen or "daily") if oral else None,
        induction_days=induction if oral else None,
        dose_time=req.dose_time,
        start_date=as_of,
        lft_interval_months=s.lft_interval_months_elevated if elevated else s.lft_interval_months,
        uds_interval_days=s.uds_interval_days,
        review_after_months=s.review_after_months,
        planned_procedures=req.planned_procedures,
        advisories=notes,
        consent=req.consent,
    )
