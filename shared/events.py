"""Event data models of DESIGN.md §3 (normative): one strict pydantic model per type.

A published model never changes in place; a breaking change is a new ``.vN`` type
registered beside the old one.
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from shared.types import (
    STRICT,
    ExactNumber,
    LocalDateTime,
    LocalTime,
    PatientId,
    PositiveExactNumber,
    TimeZoneName,
    UtcDateTime,
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
Severity = Literal["info", "warning", "high", "critical"]
Audience = Literal["care_team", "patient", "external"]

#: DESIGN.md §3.1: dose time defaults to 09:00 local.
DEFAULT_DOSE_TIME = time(9, 0)


class Data(BaseModel):
    """Base of every event's ``data``: strict, and always keyed by the patient."""

    model_config = STRICT
    patient_id: PatientId


class Part(BaseModel):
    model_config = STRICT


# --- intake request (§3.1) -------------------------------------------------


class LastOpioidUse(Part):
    date: date
    opioid: Opioid


class UrineDrugScreen(Part):
    date: date
    opioids_detected: bool


class NaloxoneChallenge(Part):
    date: date
    result: Literal["negative", "positive"]


class LiverFunction(Part):
    date: date
    alt: ExactNumber
    ast: ExactNumber
    alt_uln: PositiveExactNumber
    ast_uln: PositiveExactNumber


class PlannedProcedure(Part):
    date: date
    requires_opioid_analgesia: bool


class Psychosocial(Part):
    stable_support: bool | None = None
    employed: bool | None = None
    low_craving: bool | None = None
    failed_agonist_treatment: bool | None = None


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
    dose_time: LocalTime
    start_date: date
    lft_interval_months: int = Field(default=3, ge=1, le=6)
    uds_interval_days: int = Field(default=7, ge=1, le=90)
    review_after_months: int = Field(default=6, ge=3, le=12)
    planned_procedures: list[PlannedProcedure] = Field(default_factory=list, max_length=32)
    advisories: list[str] = Field(default_factory=list)
    consent: Consent = Field(default_factory=Consent)

    @model_validator(mode="after")
    def _oral_fields_match_formulation(self) -> TreatmentPlan:
        if self.formulation == "xr":
            for name in ("oral_regimen", "induction_days"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: must be null with formulation xr")
        elif self.oral_regimen is None or self.induction_days is None:
            raise ValueError("oral_regimen: oral plans need oral_regimen and induction_days")
        return self


# --- intake decisions ---------------------------------------------------------


class Reason(Part):
    code: str
    message: str


class IntakeDecided(Data):
    """``ntx.intake.accepted.v1`` / ``.deferred.v1`` / ``.rejected.v1``."""

    decision: Literal["accepted", "deferred", "rejected"]
    reasons: list[Reason]
    earliest_start_date: date | None
    advisories: list[str]
    plan: TreatmentPlan | None
    as_of: date
    ruleset_version: str


# --- scheduler output (§3.3) ----------------------------------------------------


class DoseDue(Data):
    due_utc: UtcDateTime
    due_local: LocalDateTime
    dose_mg: int = Field(gt=0)


class DoseHeld(Data):
    due_utc: UtcDateTime
    due_local: LocalDateTime
    dose_mg: int = Field(gt=0)
    reason: str


class InjectionDue(Data):
    due_utc: UtcDateTime
    due_local: LocalDateTime
    dose_mg: int = Field(gt=0)
    requires_uds: bool


class InjectionHeld(Data):
    due_utc: UtcDateTime
    due_local: LocalDateTime
    reason: str


class DateDue(Data):
    """Lab, screen, site check, review and re-induction notices: a local date."""

    due_local: date


class LabDue(DateDue):
    test: Literal["lft"] = "lft"


# --- health-system input (§3.3) -------------------------------------------------


class DoseAdministered(Data):
    administered_at: UtcDateTime
    dose_mg: int = Field(gt=0, le=1000)


class InjectionAdministered(Data):
    administered_at: UtcDateTime
    dose_mg: int = Field(gt=0, le=1000)


class UdsResulted(Data):
    collected_at: UtcDateTime
    opioids_detected: bool


class LabResulted(Data):
    collected_at: UtcDateTime
    alt: ExactNumber
    ast: ExactNumber
    alt_uln: PositiveExactNumber
    ast_uln: PositiveExactNumber


class ProcedureScheduled(Data):
    date: date
    requires_opioid_analgesia: bool


class TreatmentStopped(Data):
    stopped_at: UtcDateTime
    reason: str = Field(min_length=1, max_length=200)


class AlertAcknowledged(Data):
    alert: str = Field(min_length=1, max_length=64)
    #: DESIGN.md §3.3 r2: when given, acknowledges exactly that alert.
    alert_id: str | None = Field(default=None, min_length=1, max_length=128)
    by: str = Field(min_length=1, max_length=128)


# --- alerts output (§3.3) --------------------------------------------------------


class AlertChanged(Data):
    alert_id: str
    alert: str
    severity: Severity
    reason: str


class NotificationRequested(Data):
    alert_id: str
    alert: str
    severity: Severity
    audience: Audience
    offer_naloxone: bool = False


# --- notifier output (§3.3 r2) ----------------------------------------------------

#: A configured webhook endpoint's name: what events and logs say instead of its URL.
ENDPOINT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
EndpointName = Annotated[str, Field(pattern=ENDPOINT_NAME_PATTERN)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
#: Why an attempt got no HTTP status, or why no attempt was made.
DeliveryError = Literal["timeout", "connection_error", "endpoint_disabled", "no_endpoint"]


class NotificationOutcome(Data):
    """``ntx.notification.delivered.v1`` / ``.failed.v1``: what became of one
    notification request at one endpoint. ``endpoint`` is null only with status
    ``no_endpoint`` (nothing is configured for the audience)."""

    notification_id: str = Field(min_length=1, max_length=128)
    alert_id: str = Field(min_length=1, max_length=128)
    audience: Audience
    endpoint: EndpointName | None
    attempts: int = Field(ge=0)
    status: HttpStatus | DeliveryError
