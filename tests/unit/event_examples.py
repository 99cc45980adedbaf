"""One realistic, valid ``data`` per event type, for contract tests."""

from __future__ import annotations

P = "pt-0042"
PLAN = {
    "patient_id": P,
    "timezone": "America/New_York",
    "formulation": "oral",
    "oral_regimen": "mwf",
    "induction_days": 2,
    "dose_time": "08:30",
    "start_date": "2026-03-02",
    "lft_interval_months": 3,
    "uds_interval_days": 7,
    "review_after_months": 6,
    "planned_procedures": [{"date": "2026-05-01", "requires_opioid_analgesia": True}],
    "advisories": ["oral_guideline_caution", "naloxone_kit_recommended"],
    "consent": {"notify_patient": True, "notify_external": False},
}
DECISION = {
    "patient_id": P,
    "decision": "accepted",
    "reasons": [],
    "earliest_start_date": None,
    "advisories": ["naloxone_kit_recommended"],
    "plan": PLAN,
    "as_of": "2026-03-02",
    "ruleset_version": "intake-2026.11.1",
}
DEFERRED = {
    **DECISION,
    "decision": "deferred",
    "plan": None,
    "earliest_start_date": "2026-03-05",
    "reasons": [
        {"code": "opioid_free_window_not_met", "message": "4 opioid-free days of the 7 required"}
    ],
}
ALERT = {
    "patient_id": P,
    "alert_id": "a-1",
    "alert": "missed_dose",
    "severity": "warning",
    "reason": "dose_not_recorded",
}

EXAMPLES: dict[str, dict] = {
    "ntx.intake.requested.v1": {
        "patient_id": P,
        "timezone": "America/New_York",
        "formulation": "oral",
        "oral_regimen": "daily",
        "induction_days": 1,
        "last_opioid_use": {"date": "2026-02-20", "opioid": "fentanyl"},
        "urine_drug_screen": {"date": "2026-03-01", "opioids_detected": False},
        "naloxone_challenge": {"date": "2026-03-01", "result": "negative"},
        "liver_function": {
            "date": "2026-02-25",
            "alt": 120.3,
            "ast": 30,
            "alt_uln": 40.1,
            "ast_uln": 40,
        },
        "conditions": ["alcohol_use_disorder"],
        "planned_procedures": [],
        "psychosocial": {
            "stable_support": True,
            "employed": False,
            "low_craving": True,
            "failed_agonist_treatment": False,
        },
        "consent": {"notify_patient": True, "notify_external": False},
        "dose_time": "08:30",
    },
    "ntx.intake.accepted.v1": DECISION,
    "ntx.intake.deferred.v1": DEFERRED,
    "ntx.intake.rejected.v1": {
        **DEFERRED,
        "decision": "rejected",
        "earliest_start_date": None,
        "reasons": [{"code": "acute_hepatitis", "message": "contraindication"}],
    },
    "ntx.plan.created.v1": PLAN,
    "ntx.dose.due.v1": {
        "patient_id": P,
        "due_utc": "2026-03-02T13:30:00Z",
        "due_local": "2026-03-02T08:30",
        "dose_mg": 25,
    },
    "ntx.dose.held.v1": {
        "patient_id": P,
        "due_utc": "2026-04-30T12:30:00Z",
        "due_local": "2026-04-30T08:30",
        "dose_mg": 100,
        "reason": "surgery_hold",
    },
    "ntx.injection.due.v1": {
        "patient_id": P,
        "due_utc": "2026-03-02T13:30:00Z",
        "due_local": "2026-03-02T08:30",
        "dose_mg": 380,
        "requires_uds": True,
    },
    "ntx.injection.held.v1": {
        "patient_id": P,
        "due_utc": "2026-03-30T12:30:00Z",
        "due_local": "2026-03-30T08:30",
        "reason": "surgery_hold",
    },
    "ntx.lab.due.v1": {"patient_id": P, "due_local": "2026-06-02", "test": "lft"},
    "ntx.uds.due.v1": {"patient_id": P, "due_local": "2026-03-09"},
    "ntx.site_check.due.v1": {"patient_id": P, "due_local": "2026-03-16"},
    "ntx.treatment.review.due.v1": {"patient_id": P, "due_local": "2026-09-02"},
    "ntx.reinduction.required.v1": {"patient_id": P, "due_local": "2026-05-02"},
    "ntx.dose.administered.v1": {
        "patient_id": P,
        "administered_at": "2026-03-02T13:40:00Z",
        "dose_mg": 25,
    },
    "ntx.injection.administered.v1": {
        "patient_id": P,
        "administered_at": "2026-03-02T14:00:00Z",
        "dose_mg": 380,
    },
    "ntx.uds.resulted.v1": {
        "patient_id": P,
        "collected_at": "2026-03-09T15:00:00Z",
        "opioids_detected": False,
    },
    "ntx.lab.resulted.v1": {
        "patient_id": P,
        "collected_at": "2026-06-02T15:00:00Z",
        "alt": 120.3,
        "ast": 22,
        "alt_uln": 40.1,
        "ast_uln": 40,
    },
    "ntx.procedure.scheduled.v1": {
        "patient_id": P,
        "date": "2026-05-01",
        "requires_opioid_analgesia": True,
    },
    "ntx.treatment.stopped.v1": {
        "patient_id": P,
        "stopped_at": "2026-04-01T16:00:00Z",
        "reason": "patient_choice",
    },
    "ntx.alert.acknowledged.v1": {
        "patient_id": P,
        "alert": "missed_dose",
        "alert_id": "a-1",
        "by": "rn-17",
    },
    "ntx.alert.raised.v1": ALERT,
    "ntx.alert.escalated.v1": {**ALERT, "severity": "high"},
    "ntx.alert.resolved.v1": ALERT,
    "ntx.notification.requested.v1": {
        "patient_id": P,
        "alert_id": "a-1",
        "alert": "overdose_risk",
        "severity": "critical",
        "audience": "care_team",
        "offer_naloxone": True,
    },
    "ntx.notification.delivered.v1": {
        "patient_id": P,
        "notification_id": "5f0c6c1e-8d1e-4b8e-9a57-1c1f3a1b2c3d",
        "alert_id": "a-1",
        "audience": "care_team",
        "endpoint": "care-team-pager",
        "attempts": 1,
        "status": 200,
    },
    "ntx.notification.failed.v1": {
        "patient_id": P,
        "notification_id": "5f0c6c1e-8d1e-4b8e-9a57-1c1f3a1b2c3d",
        "alert_id": "a-1",
        "audience": "patient",
        "endpoint": "patient-sms",
        "attempts": 14,
        "status": "timeout",
    },
}
