"""Topic registry: every topic, what it carries, who writes it. Keyed by patient_id."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

from shared import events as ev
from shared.settings import get_settings


def _partitions() -> int:
    """Partitions of a patient-keyed topic: the ``NTX_KAFKA_PARTITIONS`` setting."""
    return get_settings().kafka_partitions


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    partitions: int = field(default_factory=_partitions)


INTAKE_REQUESTS = Topic(
    "ntx.intake.requests.v1",
    "Intake requests from health systems (directly, or as FHIR through the gateway).",
    ("health_system", "gateway"),
    ("intake",),
)
INTAKE_DECISIONS = Topic(
    "ntx.intake.decisions.v1",
    "Intake decisions with reasons and, when accepted, the treatment plan.",
    ("intake",),
    ("scheduler", "health_system"),
)
CLINICAL_EVENTS = Topic(
    "ntx.clinical.events.v1",
    "Administrations, results, procedures, stops and acknowledgements from health systems"
    " (and acknowledgements receivers send through the notifier).",
    ("health_system", "gateway", "notifier"),
    ("scheduler", "alerts"),
)
SCHEDULE = Topic(
    "ntx.schedule.v1",
    "Plans created and due/held events emitted at their due time.",
    ("scheduler",),
    ("alerts", "downstream"),
)
ALERTS = Topic(
    "ntx.alerts.v1",
    "Alert lifecycle: raised, escalated, resolved.",
    ("alerts",),
    ("downstream",),
)
NOTIFICATIONS = Topic(
    "ntx.notifications.v1",
    "Notification requests for downstream senders; ids and codes only.",
    ("alerts",),
    ("notifier", "downstream"),
)
DELIVERIES = Topic(
    "ntx.deliveries.v1",
    "Webhook delivery outcomes, one per notification request and endpoint; ids and codes only.",
    ("notifier",),
    ("alerts",),
)
DLQ = Topic(
    "ntx.dlq.v1",
    "Rejected input: the original bytes and the reason, for operators.",
    ("intake", "scheduler", "alerts", "notifier", "gateway"),
    ("operators",),
    partitions=1,  # one order of dead letters for operators; little traffic
)

ALL_TOPICS: tuple[Topic, ...] = (
    INTAKE_REQUESTS,
    INTAKE_DECISIONS,
    CLINICAL_EVENTS,
    SCHEDULE,
    ALERTS,
    NOTIFICATIONS,
    DELIVERIES,
    DLQ,
)


@dataclass(frozen=True)
class EventType:
    type: str
    model: builtins.type[ev.Data]
    topic: Topic
    source: str


def _t(name: str, model: type[ev.Data], topic: Topic, source: str) -> EventType:
    return EventType(f"ntx.{name}", model, topic, source)


_TYPES = [
    _t("intake.requested.v1", ev.IntakeRequested, INTAKE_REQUESTS, "health_system"),
    _t("intake.accepted.v1", ev.IntakeDecided, INTAKE_DECISIONS, "ntx/intake"),
    _t("intake.deferred.v1", ev.IntakeDecided, INTAKE_DECISIONS, "ntx/intake"),
    _t("intake.rejected.v1", ev.IntakeDecided, INTAKE_DECISIONS, "ntx/intake"),
    _t("plan.created.v1", ev.TreatmentPlan, SCHEDULE, "ntx/scheduler"),
    _t("dose.due.v1", ev.DoseDue, SCHEDULE, "ntx/scheduler"),
    _t("dose.held.v1", ev.DoseHeld, SCHEDULE, "ntx/scheduler"),
    _t("injection.due.v1", ev.InjectionDue, SCHEDULE, "ntx/scheduler"),
    _t("injection.held.v1", ev.InjectionHeld, SCHEDULE, "ntx/scheduler"),
    _t("lab.due.v1", ev.LabDue, SCHEDULE, "ntx/scheduler"),
    _t("uds.due.v1", ev.DateDue, SCHEDULE, "ntx/scheduler"),
    _t("site_check.due.v1", ev.DateDue, SCHEDULE, "ntx/scheduler"),
    _t("treatment.review.due.v1", ev.DateDue, SCHEDULE, "ntx/scheduler"),
    _t("reinduction.required.v1", ev.DateDue, SCHEDULE, "ntx/scheduler"),
    _t("dose.administered.v1", ev.DoseAdministered, CLINICAL_EVENTS, "health_system"),
    _t("injection.administered.v1", ev.InjectionAdministered, CLINICAL_EVENTS, "health_system"),
    _t("dose.not_given.v1", ev.DoseNotGiven, CLINICAL_EVENTS, "health_system"),
    _t("uds.resulted.v1", ev.UdsResulted, CLINICAL_EVENTS, "health_system"),
    _t("lab.resulted.v1", ev.LabResulted, CLINICAL_EVENTS, "health_system"),
    _t("procedure.scheduled.v1", ev.ProcedureScheduled, CLINICAL_EVENTS, "health_system"),
    _t("treatment.stopped.v1", ev.TreatmentStopped, CLINICAL_EVENTS, "health_system"),
    _t("alert.acknowledged.v1", ev.AlertAcknowledged, CLINICAL_EVENTS, "health_system"),
    _t("alert.raised.v1", ev.AlertChanged, ALERTS, "ntx/alerts"),
    _t("alert.escalated.v1", ev.AlertChanged, ALERTS, "ntx/alerts"),
    _t("alert.resolved.v1", ev.AlertChanged, ALERTS, "ntx/alerts"),
    _t("notification.requested.v1", ev.NotificationRequested, NOTIFICATIONS, "ntx/alerts"),
    _t("notification.delivered.v1", ev.NotificationOutcome, DELIVERIES, "ntx/notifier"),
    _t("notification.failed.v1", ev.NotificationOutcome, DELIVERIES, "ntx/notifier"),
]

EVENT_TYPES: dict[str, EventType] = {t.type: t for t in _TYPES}


def event_type(name: str) -> EventType:
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise KeyError(f"type: unknown event type {name!r}") from None


def short_type(full: str) -> str:
    """``ntx.dose.due.v1`` -> ``dose.due`` (the CLI's preview and replay form)."""
    parts = full.split(".")
    return ".".join(parts[1:-1])
