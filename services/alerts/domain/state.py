"""One patient's alert state, stored as a JSON document per patient."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Outstanding(BaseModel):
    """A dose or injection that fell due and is not recorded yet; it leaves the list
    when settled or when its deadline passes (missed)."""

    model_config = ConfigDict(extra="forbid")
    kind: str  # "dose" | "injection"
    due_utc: datetime


class Administration(BaseModel):
    """A recorded dose that matched no due yet: its due may still be on its way
    (due events and administrations travel on different topics)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    at: datetime


class OpenAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert_id: str
    alert: str
    reason: str
    severity: str
    raised_at: datetime
    acknowledged: bool = False
    escalated: bool = False


class PatientAlertState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: str
    has_plan: bool = False
    formulation: str | None = None
    notify_patient: bool = False
    notify_external: bool = False
    coverage_until: datetime | None = None
    outstanding: dict[str, Outstanding] = Field(default_factory=dict)
    unmatched: list[Administration] = Field(default_factory=list)
    on_hold: bool = False
    suspended: bool = False
    stopped_at: datetime | None = None
    open_alerts: dict[str, OpenAlert] = Field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Under treatment: a plan, not stopped, not awaiting re-induction."""
        return self.has_plan and self.stopped_at is None and not self.suspended
