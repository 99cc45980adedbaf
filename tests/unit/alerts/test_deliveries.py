"""Delivery outcomes (DESIGN.md §4.3 r2): a critical alert, open and unacknowledged,
whose latest notification round reached nobody escalates at once and asks again,
once per alert. The pure engine, then the replay reading outcome lines."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.alerts.cli import replay_lines
from services.alerts.domain.engine import Outcome, Timer, handle, on_timer
from services.alerts.domain.state import PatientAlertState
from shared.envelope import parse_data
from shared.topics import EVENT_TYPES
from tests.unit.alerts.test_engine import T0, P, given, line, plan, z

H = timedelta(hours=1)
REQUESTED = "ntx.notification.requested.v1"
FAILED, DELIVERED = "ntx.notification.failed.v1", "ntx.notification.delivered.v1"


def apply(state: PatientAlertState | None, text: str) -> Outcome:
    raw = json.loads(text)
    data = parse_data(EVENT_TYPES[raw["type"]], raw["data"])
    return handle(state, raw["type"], data, raw["id"], T0 + 2 * H)


def state_after(*lines: str) -> tuple[PatientAlertState | None, Outcome | None]:
    state, out = None, None
    for text in lines:
        out = apply(state, text)
        state = out.state
    return state, out


def stop_line(at=T0 + H) -> str:
    return line(at, "ntx.treatment.stopped.v1", stopped_at=z(at), reason="other")


def raised_critical_lines(notify_patient: bool = True) -> list[str]:
    return [plan(notify_patient=notify_patient), given(T0), stop_line()]


def raised_critical(notify_patient: bool = True, lines=None) -> tuple[PatientAlertState, list]:
    """A discontinued alert (critical) and its notification requests."""
    state, out = state_after(*(lines or raised_critical_lines(notify_patient)))
    assert state is not None and out is not None
    return state, requests(out)


def requests(out: Outcome) -> list:
    return [e for e in out.emits if e.type == REQUESTED]


def outcome_line(request, type_: str = FAILED, status: str | int = "no_endpoint") -> str:
    return line(
        T0 + 90 * timedelta(minutes=1),
        type_,
        notification_id=request.id,
        alert_id=request.data.alert_id,
        audience=request.data.audience,
        endpoint=None if status == "no_endpoint" else "care-team-ehr",
        attempts=0 if status == "no_endpoint" else 3,
        status=status,
    )


def feed(state: PatientAlertState, *lines: str) -> tuple[PatientAlertState, list[Outcome]]:
    outs = []
    for text in lines:
        out = apply(state, text)
        state = out.state
        outs.append(out)
    return state, outs


def escalations(outs: list[Outcome]) -> list:
    return [e for out in outs for e in out.emits if e.type == "ntx.alert.escalated.v1"]


def test_every_audience_failed_escalates_once_and_asks_again():
    state, reqs = raised_critical()
    assert [r.data.audience for r in reqs] == ["care_team", "patient"]
    state, outs = feed(state, *(outcome_line(r) for r in reqs))
    assert escalations(outs[:1]) == []  # the patient's outcome is not in yet
    [esc] = escalations(outs)
    assert (esc.data.reason, esc.data.severity) == ("notifications_failed", "critical")
    again = requests(outs[-1])
    assert [r.data.audience for r in again] == ["care_team", "patient"]
    assert {r.id for r in again}.isdisjoint({r.id for r in reqs})
    alert = state.open_alerts["overdose_risk:discontinued"]
    assert [n.notification_id for n in alert.notified] == [r.id for r in again]
    assert outs[-1].set_timers == [] and outs[-1].cancel_timers == []  # the 1 h one stands


def test_a_second_failed_round_does_not_escalate_again():
    state, reqs = raised_critical(notify_patient=False)
    state, outs = feed(state, outcome_line(reqs[0]))
    again = requests(outs[-1])
    assert len(escalations(outs)) == 1
    state, outs = feed(state, *(outcome_line(r) for r in again), outcome_line(reqs[0]))
    assert escalations(outs) == [] and all(o.emits == [] for o in outs)


@pytest.mark.parametrize("order", ["delivered_first", "failed_first"])
def test_one_delivered_audience_means_someone_was_told(order):
    state, (care, patient) = raised_critical()
    told = [outcome_line(patient, DELIVERED, 204), outcome_line(care)]
    state, outs = feed(state, *(told if order == "delivered_first" else told[::-1]))
    assert escalations(outs) == []


def test_one_endpoint_delivering_counts_for_its_audience():
    state, (care,) = raised_critical(notify_patient=False)
    _, outs = feed(state, outcome_line(care, DELIVERED, 200), outcome_line(care, FAILED, 503))
    assert escalations(outs) == []


def test_an_acknowledged_alert_does_not_escalate_and_keeps_its_state():
    state, (care,) = raised_critical(notify_patient=False)
    ack = line(T0 + H, "ntx.alert.acknowledged.v1", alert="overdose_risk", by="rn-1")
    state = apply(state, ack).state
    out = apply(state, outcome_line(care))
    assert out.emits == [] and out.state == state


def test_a_high_alert_does_not_escalate_on_failed_notifications():
    not_given = line(
        T0 + H,
        "ntx.dose.not_given.v1",
        due_utc=None,
        recorded_at=z(T0 + H),
        kind="injection",
        reason="patient_refused",
    )
    state, out = state_after(plan("xr"), not_given)
    assert state is not None and out is not None
    [care] = requests(out)
    assert care.data.severity == "high"
    _, outs = feed(state, outcome_line(care))
    assert escalations(outs) == [] and outs[0].emits == []


def test_outcomes_of_unknown_or_resolved_alerts_change_nothing():
    state, (care,) = raised_critical(notify_patient=False)
    stranger = apply(None, outcome_line(care).replace(f'"{P}"', '"p-unknown"'))
    assert stranger.emits == [] and stranger.set_timers == [] and stranger.cancel_timers == []
    assert stranger.state.open_alerts == {}
    unknown = json.loads(outcome_line(care))
    unknown["data"]["alert_id"] = "not-an-alert"
    out = apply(state, json.dumps(unknown))
    assert out.emits == [] and out.state == state
    superseded = apply(state, stop_line(T0 + 80 * timedelta(minutes=1))).state
    new = superseded.open_alerts["overdose_risk:discontinued"]
    assert new.alert_id != care.data.alert_id  # the first alert is resolved
    out = apply(superseded, outcome_line(care))
    assert out.emits == [] and out.state == superseded


def test_after_the_time_based_escalation_its_round_is_the_one_that_counts():
    state, (care,) = raised_critical(notify_patient=False)
    alert = state.open_alerts["overdose_risk:discontinued"]
    payload = {"alert": "overdose_risk:discontinued", "alert_id": alert.alert_id}
    timer = Timer("escalate:overdose_risk:discontinued", T0 + 2 * H, "escalate", payload)
    timed = on_timer(state, timer, T0 + 2 * H)
    [timed_care] = requests(timed)
    state, outs = feed(timed.state, outcome_line(care))  # the raise's round: older
    assert escalations(outs) == []
    state, outs = feed(state, outcome_line(timed_care))
    [esc] = escalations(outs)
    assert esc.data.reason == "notifications_failed"


def test_a_repeated_outcome_escalates_nothing_more():
    state, (care,) = raised_critical(notify_patient=False)
    failed = outcome_line(care)
    state, outs = feed(state, failed, failed)
    assert len(escalations(outs)) == 1 and outs[1].emits == []


# --- the replay reads outcome lines ----------------------------------------------------


@pytest.mark.parametrize("status, escalated", [("no_endpoint", True), (204, False)])
def test_replay_reads_outcome_lines(status, escalated):
    lines = raised_critical_lines(notify_patient=False)
    _, (care,) = raised_critical(lines=lines)
    kind = FAILED if status == "no_endpoint" else DELIVERED
    out = [
        (o["at"], o["type"], o["reason"], o["severity"])
        for o in replay_lines([*lines, outcome_line(care, kind, status)])
    ]
    assert out[0] == (z(T0 + H), "alert.raised", "discontinued", "critical")
    notified_at = z(T0 + 90 * timedelta(minutes=1))
    undelivered = (notified_at, "alert.escalated", "notifications_failed", "critical")
    assert out[1:] == ([undelivered] if escalated else [])
