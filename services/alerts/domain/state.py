"""One patient's alert state, stored as a JSON document per patient, versioned:
:data:`STORED` loads any row ever written through its upcasters (DESIGN.md §5 r2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.ids import stable_id
from shared.stored import VersionedDocument


class Outstanding(BaseModel):
    """A dose or injection that fell due and is not recorded yet; it leaves the list
    when settled or when its deadline passes (missed)."""

    model_config = ConfigDict(extra="forbid")
    kind: str  # "dose" | "injection"
    due_utc: datetime


class Administration(BaseModel):
    """A recorded dose (or not-given record) that matched no due yet: its due may
    still be on its way (due events and administrations travel on different topics)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    at: datetime


class Notified(BaseModel):
    """[r2] One notification request of an alert's latest round, and what the notifier
    said of it: an audience may have several endpoints, each with its own outcome."""

    model_config = ConfigDict(extra="forbid")
    notification_id: str
    audience: str
    delivered: bool = False
    failed: bool = False


class OpenAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert_id: str
    alert: str
    reason: str
    severity: str
    raised_at: datetime
    acknowledged: bool = False
    escalated: bool = False
    #: [r2] the requests of the latest announcement (raise or escalation).
    notified: list[Notified] = Field(default_factory=list)
    #: [r2] escalations so far because a whole round went undelivered.
    undelivered_escalations: int = 0


class PatientAlertState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The stored shape's version: bump it, with an upcaster, when the shape changes.
    schema_version: Literal[3] = 3
    patient_id: str
    has_plan: bool = False
    #: [r2] under treatment without a plan seen: adopted from a due or administration.
    adopted: bool = False
    formulation: str | None = None
    timezone: str = "UTC"
    notify_patient: bool = False
    notify_external: bool = False
    #: Blockade from recorded doses and injections only.
    coverage_until: datetime | None = None
    #: [r2] never started: with no dose recorded since the plan began, coverage
    #: counts as ended at the first due time.
    dosed_since_plan: bool = False
    last_dose_at: datetime | None = None
    first_due_at: datetime | None = None
    outstanding: dict[str, Outstanding] = Field(default_factory=dict)
    unmatched: list[Administration] = Field(default_factory=list)
    #: [r2] dues recorded as not given before their due event arrived.
    declined: list[Administration] = Field(default_factory=list)
    on_hold: bool = False
    suspended: bool = False
    stopped_at: datetime | None = None
    #: [r2] a new plan after a stop or suspension: the post-stop risk ends with the
    #: first dose or injection recorded under it (blockade restored).
    restoring: bool = False
    #: [r2] results apply in specimen order: the latest collection applied so far.
    latest_screen_at: datetime | None = None
    latest_lab_at: datetime | None = None
    #: [r2] the open opioid_use_detected rests on a fentanyl-positive specimen.
    fentanyl_alerted: bool = False
    open_alerts: dict[str, OpenAlert] = Field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Under treatment: a plan, not stopped, not awaiting re-induction."""
        return self.has_plan and self.stopped_at is None and not self.suspended

    @property
    def lapse_base(self) -> datetime | None:
        """When blockade ended or ends: recorded coverage, or the first due time of a
        plan under which nothing was ever taken, whichever is later."""
        found = [self.coverage_until]
        if not self.dosed_since_plan:
            found.append(self.first_due_at)
        known = [t for t in found if t is not None]
        return max(known) if known else None


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 1 is every row written before documents carried a version. Rows of
    revision 1 lack the revision-2 fields, and the defaults fill them, save one: a
    patient with recorded coverage had been dosed under the plan, so is not taken
    for one who never started."""
    doc.setdefault("dosed_since_plan", doc.get("coverage_until") is not None)
    return doc


def consented_audiences(notify_patient: bool, notify_external: bool) -> list[str]:
    """Care team always; others only with consent (42 CFR Part 2)."""
    return ["care_team"] + ["patient"] * notify_patient + ["external"] * notify_external


def request_id(alert_id: str, transition: str, audience: str) -> str:
    """The event id of the notification request of one transition and audience (the
    notifier's ``notification_id``), derived from its cause like every alert event."""
    return stable_id(alert_id, f"{transition}:{audience}")


def _v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 2 kept no notification rounds. Each open alert's latest round is derived
    again (ids are derived from causes): its time-based escalation's if it had one,
    else its raise's, to the audiences consent allows now. Only critical alerts use
    it, and those are raised and escalated by exactly these transitions; a wrong
    guess for another matches no outcome, so changes nothing."""
    audiences = consented_audiences(
        bool(doc.get("notify_patient")), bool(doc.get("notify_external"))
    )
    for alert in doc.get("open_alerts", {}).values():
        transition = f"escalated:{alert['severity']}" if alert.get("escalated") else "raised"
        alert["notified"] = [
            {"notification_id": request_id(alert["alert_id"], transition, a), "audience": a}
            for a in audiences
        ]
    return doc


STORED = VersionedDocument(PatientAlertState, (_v1_to_v2, _v2_to_v3))
