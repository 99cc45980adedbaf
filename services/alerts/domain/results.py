"""Urine screens and liver panels (DESIGN.md §4.3). Results apply in specimen order:
one collected before the latest already applied is recorded but raises, lowers and
resolves nothing. Thresholds compare exactly (decimal arithmetic)."""

from __future__ import annotations

from datetime import datetime

from services.alerts.domain.lifecycle import (
    HEPATOTOXICITY,
    OPIOID_USE,
    SEVERITY_RANK,
    Step,
    key_of,
)
from services.alerts.domain.settings import DEFAULT_SETTINGS, AlertSettings
from shared import events as ev


def _in_order(latest: datetime | None, collected: datetime) -> bool:
    """A specimen collected before the latest one applied is stale."""
    return latest is None or collected >= latest


def screen(step: Step, result: ev.UdsResulted, event_id: str) -> None:
    st = step.state
    if not _in_order(st.latest_screen_at, result.collected_at):
        return
    st.latest_screen_at = result.collected_at
    if result.positive:
        _positive(step, result, event_id)
    elif result.fentanyl_detected is False or not st.fentanyl_alerted:
        # an alert raised on fentanyl resolves only on a screen that tested for it
        step.resolve(OPIOID_USE)
        st.fentanyl_alerted = False


def _positive(step: Step, result: ev.UdsResulted, event_id: str) -> None:
    """During treatment, or within 60 days after a stop (DESIGN.md §4.3 r2). A new
    positive specimen on an open alert is new evidence: escalated and notified again,
    unless an escalation is still pending (it will notify anyway)."""
    st = step.state
    if not _watched(step, result.collected_at):
        return
    st.fentanyl_alerted = st.fentanyl_alerted or result.fentanyl_detected is True
    alert = step.is_open(OPIOID_USE)
    if alert is None:
        st.fentanyl_alerted = result.fentanyl_detected is True
        step.raise_alert(OPIOID_USE, event_id)
    elif alert.acknowledged or alert.escalated:
        step.escalate(key_of(OPIOID_USE), f"evidence:{event_id}")


def _watched(step: Step, collected: datetime) -> bool:
    st = step.state
    if not st.has_plan:
        return False
    if st.stopped_at is None:
        return True  # under treatment, or suspended awaiting re-induction
    return collected < st.stopped_at + step.s.post_stop_risk


def liver(step: Step, lab: ev.LabResulted, event_id: str) -> None:
    st = step.state
    if not _in_order(st.latest_lab_at, lab.collected_at):
        return
    st.latest_lab_at = lab.collected_at
    severity = hepatotoxicity_severity(lab, step.s)
    current = step.is_open(HEPATOTOXICITY)
    if severity is None:
        step.resolve(HEPATOTOXICITY)
    elif current is None:
        step.raise_alert((*HEPATOTOXICITY, severity), event_id)
    elif SEVERITY_RANK[severity] > SEVERITY_RANK[current.severity]:
        step.upgrade(key_of(HEPATOTOXICITY), severity, event_id)


def hepatotoxicity_severity(lab: ev.LabResulted, s: AlertSettings = DEFAULT_SETTINGS) -> str | None:
    """Exact decimal comparison: ALT 120.3 with ULN 40.1 is 3x ULN."""
    multiple = lab.uln_multiple
    if multiple >= s.hepatotoxicity_high_multiple:
        return "high"
    return "warning" if multiple >= s.hepatotoxicity_warning_multiple else None
