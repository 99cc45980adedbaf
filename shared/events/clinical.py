"""What the health system records (§3.3): administrations, doses not given, screens,
liver panels, procedures, stops and acknowledgements."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.events.base import Data, LiverPanel, OralDoseMg, XrDoseMg
from shared.types import (
    ExactNumber,
    PlausibleDate,
    PlausibleUtcDateTime,
    PositiveExactNumber,
)


class DoseAdministered(Data):
    administered_at: PlausibleUtcDateTime
    #: [r2] an oral dose outside {25, 50, 100, 150} mg is an input error, never mapped.
    dose_mg: OralDoseMg


class InjectionAdministered(Data):
    administered_at: PlausibleUtcDateTime
    #: [r2] an injection other than 380 mg is an input error.
    dose_mg: XrDoseMg


class DoseNotGiven(Data):
    """[r2] ``ntx.dose.not_given.v1``: a dose or injection recorded as not given
    (FHIR ``MedicationAdministration.status = not-done``)."""

    due_utc: PlausibleUtcDateTime | None
    recorded_at: PlausibleUtcDateTime
    kind: Literal["dose", "injection"]
    reason: Literal["patient_refused", "patient_absent", "clinical_hold", "supply", "other"]


class UdsResulted(Data):
    collected_at: PlausibleUtcDateTime
    opioids_detected: bool
    #: [r2] null or absent: not tested.
    fentanyl_detected: bool | None = None

    @property
    def positive(self) -> bool:
        return self.opioids_detected or self.fentanyl_detected is True


class LabResulted(Data, LiverPanel):
    collected_at: PlausibleUtcDateTime
    alt: ExactNumber
    ast: ExactNumber
    alt_uln: PositiveExactNumber
    ast_uln: PositiveExactNumber


class ProcedureScheduled(Data):
    date: PlausibleDate
    requires_opioid_analgesia: bool


class TreatmentStopped(Data):
    stopped_at: PlausibleUtcDateTime
    reason: str = Field(min_length=1, max_length=200)


class AlertAcknowledged(Data):
    alert: str = Field(min_length=1, max_length=64)
    #: [r2] acknowledges exactly that alert; without it, the alert of this code open
    #: at that moment.
    alert_id: str | None = Field(default=None, min_length=1, max_length=128)
    by: str = Field(min_length=1, max_length=128)
