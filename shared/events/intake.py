"""The intake request (§3.1), the treatment plan (§3.2) and the intake decision."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.events.base import Data, LiverPanel, Part
from shared.types import (
    Code,
    ExactNumber,
    HistoryDate,
    LocalTime,
    PlausibleDate,
    PositiveExactNumber,
    Text,
    TimeZoneName,
)

Opioid = Literal[
    "heroin",
    "fentanyl",
    "oxycodone",
    "hydrocodone",
    "morphine",
    "codeine",
    "other_short_acting",
    "methadone",
    "buprenorphine",
    "buprenorphine_xr",
]
Condition = Literal[
    "acute_hepatitis",
    "liver_failure",
    "opioid_analgesic_required",
    "naltrexone_hypersensitivity",
    "pregnancy",
    "alcohol_use_disorder",
    "depression",
]
Formulation = Literal["oral", "xr"]
OralRegimen = Literal["daily", "mwf"]

#: DESIGN.md §3.1: dose time defaults to 09:00 local.
DEFAULT_DOSE_TIME = time(9, 0)

#: DESIGN.md §4.2 [r2]: 50 mg daily this many days before the Mon/Wed/Fri doses (the
#: Revia label steps up through 50 mg daily before larger doses).
DEFAULT_MWF_STEP_DAYS = 7

#: DESIGN.md §3.1 [r2]: the only deferrals a clinician's documented review may lift.
OVERRIDABLE = ("depot_buprenorphine_requires_clinician", "pregnancy_clinician_review")


def _overridable(code: str) -> str:
    if code not in OVERRIDABLE:
        raise ValueError(f"{code!r} may not be overridden (only {' and '.join(OVERRIDABLE)})")
    return code


OverridableCode = Annotated[
    str,
    AfterValidator(_overridable),
    WithJsonSchema({"type": "string", "enum": list(OVERRIDABLE)}),
]


class LastOpioidUse(Part):
    date: HistoryDate
    opioid: Opioid


class UrineDrugScreen(Part):
    date: HistoryDate
    opioids_detected: bool
    #: [r2] null or absent: not tested (standard opiate immunoassays miss fentanyl).
    fentanyl_detected: bool | None = None


class NaloxoneChallenge(Part):
    date: HistoryDate
    result: Literal["negative", "positive"]


class LiverFunction(Part, LiverPanel):
    date: HistoryDate
    alt: ExactNumber
    ast: ExactNumber
    alt_uln: PositiveExactNumber
    ast_uln: PositiveExactNumber


class PlannedProcedure(Part):
    date: PlausibleDate
    requires_opioid_analgesia: bool


class Psychosocial(Part):
    stable_support: bool | None = None
    employed: bool | None = None
    low_craving: bool | None = None
    failed_agonist_treatment: bool | None = None


class ClinicianOverride(Part):
    """[r2] A clinician's documented review lifting deferrals that need one."""

    by: str = Field(min_length=1, max_length=128)
    codes: list[OverridableCode] = Field(min_length=1, max_length=len(OVERRIDABLE))


class Consent(Part):
    notify_patient: bool = False
    notify_external: bool = False


class IntakeRequested(Data):
    """``ntx.intake.requested.v1``: a health system asks whether a patient may start."""

    timezone: TimeZoneName
    formulation: Formulation
    oral_regimen: OralRegimen | None = None
    induction_days: int | None = Field(default=None, ge=0, le=3)
    last_opioid_use: LastOpioidUse
    urine_drug_screen: UrineDrugScreen | None = None
    naloxone_challenge: NaloxoneChallenge | None = None
    liver_function: LiverFunction | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    planned_procedures: list[PlannedProcedure] = Field(default_factory=list, max_length=32)
    psychosocial: Psychosocial | None = None
    clinician_override: ClinicianOverride | None = None
    consent: Consent = Field(default_factory=Consent)
    dose_time: LocalTime = DEFAULT_DOSE_TIME

    @model_validator(mode="after")
    def _oral_fields_only_for_oral(self) -> IntakeRequested:
        if self.formulation == "xr":
            for name in ("oral_regimen", "induction_days"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: not allowed with formulation xr")
        return self


# --- plan (§3.2) -------------------------------------------------------------


class TreatmentPlan(Data):
    """``ntx.plan.created.v1`` data, and the ``plan`` of an accepted decision."""

    timezone: TimeZoneName
    formulation: Formulation
    oral_regimen: OralRegimen | None
    induction_days: int | None = Field(ge=0, le=3)
    #: [r2] days of 50 mg daily before Mon/Wed/Fri; mwf plans only (default 7).
    mwf_step_days: int | None = Field(default=None, ge=0, le=14, validate_default=True)
    dose_time: LocalTime
    start_date: PlausibleDate
    lft_interval_months: int = Field(default=3, ge=1, le=6)
    uds_interval_days: int = Field(default=7, ge=1, le=90)
    review_after_months: int = Field(default=6, ge=3, le=12)
    planned_procedures: list[PlannedProcedure] = Field(default_factory=list, max_length=32)
    advisories: list[Code] = Field(default_factory=list, max_length=32)
    consent: Consent = Field(default_factory=Consent)

    @field_validator("mwf_step_days")
    @classmethod
    def _mwf_step_default(cls, value: int | None, info: ValidationInfo) -> int | None:
        """An mwf plan without ``mwf_step_days`` gets the default (plans stored
        before revision 2 load with it too)."""
        if value is None and info.data.get("oral_regimen") == "mwf":
            return DEFAULT_MWF_STEP_DAYS
        return value

    @model_validator(mode="after")
    def _oral_fields_match_formulation(self) -> TreatmentPlan:
        if self.formulation == "xr":
            for name in ("oral_regimen", "induction_days", "mwf_step_days"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: must be null with formulation xr")
        elif self.oral_regimen is None or self.induction_days is None:
            raise ValueError("oral_regimen: oral plans need oral_regimen and induction_days")
        elif self.oral_regimen == "daily" and self.mwf_step_days is not None:
            raise ValueError("mwf_step_days: only with oral_regimen mwf")
        return self


# --- intake decisions ---------------------------------------------------------


class Reason(Part):
    code: Code
    message: Text


class IntakeDecided(Data):
    """``ntx.intake.accepted.v1`` / ``.deferred.v1`` / ``.rejected.v1``."""

    decision: Literal["accepted", "deferred", "rejected"]
    reasons: list[Reason] = Field(max_length=32)
    earliest_start_date: PlausibleDate | None
    advisories: list[Code] = Field(max_length=32)
    plan: TreatmentPlan | None
    as_of: PlausibleDate
    ruleset_version: Code
