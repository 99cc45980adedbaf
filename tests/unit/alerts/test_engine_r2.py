"""Revision 2 alert rules (DESIGN.md §4.3 r2) through the replay (the worker's rules
on a simulated clock), both sides of every boundary."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.alerts.cli import replay_lines
from services.alerts.domain.engine import handle
from services.alerts.replay import ReplayError
from shared import events as ev
from shared.envelope import parse_data
from shared.topics import EVENT_TYPES
from tests.unit.alerts.test_engine import (
    T0,
    P,
    dose_due,
    given,
    injection_due,
    line,
    plan,
    raised,
    run,
    z,
)

H, D = timedelta(hours=1), timedelta(days=1)


def clock(t) -> str:
    return line(t, "clock")


def kinds(out) -> list[tuple[str, str, str]]:
    return [(k, a, r) for _, k, a, r in out]


def not_given(t, kind="dose", due=None, reason="patient_refused", arrives=None) -> str:
    return line(
        arrives or t,
        "ntx.dose.not_given.v1",
        due_utc=z(due) if due else None,
        recorded_at=z(t),
        kind=kind,
        reason=reason,
    )


def stop(t) -> str:
    return line(t, "ntx.treatment.stopped.v1", stopped_at=z(t), reason="patient_choice")


def ack(t, alert="overdose_risk", alert_id=None) -> str:
    data = {"alert": alert, "by": "rn-1"}
    if alert_id:
        data["alert_id"] = alert_id
    return line(t, "ntx.alert.acknowledged.v1", **data)


def screen(t, opioids=False, fentanyl=None, collected=None) -> str:
    return line(
        t,
        "ntx.uds.resulted.v1",
        collected_at=z(collected or t),
        opioids_detected=opioids,
        fentanyl_detected=fentanyl,
    )


def panel(t, alt, collected=None) -> str:
    return line(
        t,
        "ntx.lab.resulted.v1",
        collected_at=z(collected or t),
        alt=alt,
        ast=20,
        alt_uln=40,
        ast_uln=40,
    )


def reinduction(t) -> str:
    return line(t, "ntx.reinduction.required.v1", due_local=t.date().isoformat())


def procedure(t, day) -> str:
    return line(
        t, "ntx.procedure.scheduled.v1", date=day.isoformat(), requires_opioid_analgesia=True
    )


# --- adoption of unknown patients ---------------------------------------------------


@pytest.mark.parametrize(
    "first, expected",
    [
        (dose_due(T0), [(T0 + 12 * H, "missed_dose"), (T0 + 48 * H, "overdose_risk")]),
        (
            injection_due(T0),
            [(T0 + 72 * H, "missed_injection"), (T0 + 7 * D, "overdose_risk")],
        ),
        (given(T0), [(T0 + 24 * H + 48 * H, "overdose_risk")]),
        (given(T0, 380, "injection"), [(T0 + 28 * D + 7 * D, "overdose_risk")]),
        (not_given(T0), [(T0, "missed_dose"), (T0 + 48 * H, "overdose_risk")]),
    ],
)
def test_an_unknown_patient_is_adopted_not_dropped(first, expected):
    out = run(first, clock(T0 + 40 * D))
    assert raised(out) == [(z(t), a) for t, a in expected]


def test_adoption_is_reported_once_and_notifies_the_care_team_only():
    due = ev.DoseDue(patient_id=P, due_utc=T0, due_local=T0.replace(tzinfo=None), dose_mg=50)
    first = handle(None, "ntx.dose.due.v1", due, "e1", T0)
    assert first.adopted and first.state.adopted and first.state.formulation == "oral"
    again = handle(first.state, "ntx.dose.due.v1", due, "e2", T0)
    assert not again.adopted
    refused = ev.DoseNotGiven(
        patient_id=P, due_utc=None, recorded_at=T0, kind="dose", reason="patient_absent"
    )
    out = handle(first.state, "ntx.dose.not_given.v1", refused, "e3", T0)
    notes = [e.data.audience for e in out.emits if e.type == "ntx.notification.requested.v1"]
    assert notes == ["care_team"]


def test_an_unknown_patient_suspended_after_a_procedure_is_adopted_and_alerted():
    """The re-induction notice means the scheduler had a plan: tolerance is lost all
    the same, so the care team (only: consent unknown) hears of it."""
    first = line(T0, "ntx.reinduction.required.v1", due_local=T0.date().isoformat())
    data = parse_data(EVENT_TYPES["ntx.reinduction.required.v1"], json.loads(first)["data"])
    out = handle(None, "ntx.reinduction.required.v1", data, "e1", T0)
    assert out.adopted and out.state.formulation is None
    notes = [e.data.audience for e in out.emits if e.type == "ntx.notification.requested.v1"]
    assert notes == ["care_team"]
    assert raised(run(first)) == [(z(T0), "overdose_risk")]


def test_a_stopped_patient_is_not_adopted_by_a_reinduction_notice():
    out = run(stop(T0), reinduction(T0 + D), clock(T0 + 10 * D))
    assert [a for _, a in raised(out)] == ["overdose_risk"]  # discontinued only
    assert ("alert.raised", "overdose_risk", "tolerance_lost_after_hold") not in kinds(out)


def test_held_doses_and_stopped_patients_are_not_adopted():
    held = line(
        T0,
        "ntx.dose.held.v1",
        due_utc=z(T0),
        due_local=T0.strftime("%Y-%m-%dT%H:%M"),
        dose_mg=50,
        reason="surgery_hold",
    )
    assert run(held, clock(T0 + 10 * D)) == []
    out = run(stop(T0), dose_due(T0 + D), clock(T0 + 10 * D))
    assert [a for _, a in raised(out)] == ["overdose_risk"]  # discontinued only


# --- never started -------------------------------------------------------------------


@pytest.mark.parametrize(
    "formulation, due_line, lapse_after",
    [("oral", dose_due(T0), 48 * H), ("xr", injection_due(T0), 7 * D)],
)
@pytest.mark.parametrize("early", [True, False])
def test_never_started_lapses_from_the_first_due(formulation, due_line, lapse_after, early):
    probe = T0 + lapse_after - (timedelta(minutes=1) if early else timedelta(0))
    out = run(plan(formulation), due_line, clock(probe))
    lapses = [t for t, a in raised(out) if a == "overdose_risk"]
    assert lapses == ([] if early else [z(T0 + lapse_after)])


def test_a_first_dose_ends_the_never_started_clock():
    out = run(plan(), dose_due(T0), given(T0 + H), clock(T0 + 60 * H))
    assert raised(out) == []


# --- not given ------------------------------------------------------------------------


def test_not_given_raises_at_once_settles_its_due_and_resolves_on_the_next_dose():
    out = run(
        plan(),
        dose_due(T0),
        given(T0),
        dose_due(T0 + D),
        not_given(T0 + D + H, due=T0 + D),
        clock(T0 + D + 13 * H),  # past the due's deadline: nothing more for it
        dose_due(T0 + 2 * D),
        given(T0 + 2 * D),
    )
    assert kinds(out) == [
        ("alert.raised", "missed_dose", "dose_not_given"),
        ("alert.resolved", "missed_dose", "dose_not_given"),
    ]
    assert out[0][0] == z(T0 + D + H)


def test_not_given_without_a_due_settles_the_nearest_one():
    out = run(plan(), dose_due(T0), not_given(T0 + H), clock(T0 + 13 * H))
    assert kinds(out) == [("alert.raised", "missed_dose", "dose_not_given")]


def test_not_given_before_its_due_arrives_still_settles_it():
    out = run(
        plan(),
        not_given(T0 + 5 * timedelta(minutes=1), due=T0),
        dose_due(T0, arrives=T0 + 10 * timedelta(minutes=1)),
        clock(T0 + 13 * H),
    )
    assert [r for _, _, r in kinds(out)] == ["dose_not_given"]


def test_an_injection_not_given_is_a_high_missed_injection_that_escalates():
    out = run(
        plan("xr"),
        given(T0, 380, "injection"),
        injection_due(T0 + 28 * D),
        not_given(T0 + 28 * D + H, kind="injection", due=T0 + 28 * D),
        clock(T0 + 29 * D + H),
    )
    assert kinds(out) == [
        ("alert.raised", "missed_injection", "dose_not_given"),
        ("alert.escalated", "missed_injection", "dose_not_given"),
    ]


# --- episodes and acknowledgements --------------------------------------------------------


def episode_lines(second_ack: str | None = None) -> list[str]:
    first_stop = T0 + 10 * D
    resumed = T0 + 20 * D
    second = resumed + 40 * D
    lines = [
        plan("xr"),
        given(T0, 380, "injection"),
        stop(first_stop),
        ack(first_stop + 10 * timedelta(minutes=1)),
        plan("xr").replace(z(T0 - H), z(resumed - H)).replace('"e', '"r'),
        given(resumed, 380, "injection"),
        given(resumed + 28 * D, 380, "injection"),
        stop(second),
    ]
    if second_ack:
        lines.append(second_ack)
    return [*lines, clock(second + 2 * H)]


def test_a_second_stop_after_resuming_raises_and_notifies_again():
    out = run(*episode_lines())
    assert kinds(out) == [
        ("alert.raised", "overdose_risk", "discontinued"),
        ("alert.resolved", "overdose_risk", "discontinued"),  # blockade restored
        ("alert.raised", "overdose_risk", "discontinued"),
        ("alert.escalated", "overdose_risk", "discontinued"),  # the old ack never applies
    ]


def test_a_stop_while_one_is_open_supersedes_it():
    out = run(plan(), given(T0), stop(T0 + H), ack(T0 + 2 * H), stop(T0 + 3 * H), clock(T0 + 5 * H))
    assert kinds(out) == [
        ("alert.raised", "overdose_risk", "discontinued"),
        ("alert.resolved", "overdose_risk", "superseded"),
        ("alert.raised", "overdose_risk", "discontinued"),
        ("alert.escalated", "overdose_risk", "discontinued"),
    ]


def _alert_ids(lines: list[str]) -> list[str]:
    state = None
    ids = []
    for text in lines:
        raw = json.loads(text)
        if raw["type"] == "clock":
            continue
        data = parse_data(EVENT_TYPES[raw["type"]], raw["data"])
        out = handle(state, raw["type"], data, raw["id"], T0)
        state = out.state
        ids += [e.data.alert_id for e in out.emits if e.type == "ntx.alert.raised.v1"]
    return ids


@pytest.mark.parametrize("right_id", [True, False])
def test_acknowledgement_by_alert_id_applies_to_exactly_that_alert(right_id):
    base = [plan(), given(T0), stop(T0 + H), ack(T0 + 2 * H), stop(T0 + 3 * H)]
    first, second = _alert_ids(base)
    target = second if right_id else first
    out = run(*base, ack(T0 + 3 * H + timedelta(minutes=5), alert_id=target), clock(T0 + 6 * H))
    escalations = [k for k in kinds(out) if k[0] == "alert.escalated"]
    assert escalations == (
        [] if right_id else [("alert.escalated", "overdose_risk", "discontinued")]
    )


@pytest.mark.parametrize("days, resolved_by_timer", [(59, False), (60, True)])
def test_post_stop_risk_lasts_60_days_without_restored_blockade(days, resolved_by_timer):
    out = run(plan(), given(T0), stop(T0 + H), ack(T0 + 2 * H), clock(T0 + H + days * D))
    assert (("alert.resolved", "overdose_risk", "discontinued") in kinds(out)) is resolved_by_timer


def test_a_new_plan_alone_does_not_end_the_post_stop_risk():
    resumed = T0 + 5 * D
    new_plan = plan().replace(z(T0 - H), z(resumed)).replace('"e', '"n')
    new_plan = new_plan.replace('"start_date": "2026-03-02"', '"start_date": "2026-03-07"')
    out = run(plan(), given(T0), stop(T0 + H), ack(T0 + 2 * H), new_plan, clock(resumed + 2 * H))
    assert kinds(out) == [("alert.raised", "overdose_risk", "discontinued")]
    restored = run(plan(), given(T0), stop(T0 + H), ack(T0 + 2 * H), new_plan, given(resumed + H))
    assert kinds(restored)[-1] == ("alert.resolved", "overdose_risk", "discontinued")
    assert restored[-1][0] == z(resumed + H)


# --- specimen order, repeat positives, after a stop ---------------------------------------


@pytest.mark.parametrize(
    "collected_offset, resolves", [(-timedelta(minutes=1), False), (timedelta(0), True)]
)
def test_a_screen_collected_before_the_latest_applied_changes_nothing(collected_offset, resolves):
    positive_at = T0 + 5 * H
    out = run(
        plan(),
        given(T0),
        screen(positive_at, opioids=True),
        screen(positive_at + H, collected=positive_at + collected_offset),
    )
    assert (("alert.resolved", "opioid_use_detected", "urine_screen_positive") in kinds(out)) is (
        resolves
    )


@pytest.mark.parametrize(
    "collected_offset, resolves", [(-timedelta(minutes=1), False), (timedelta(0), True)]
)
def test_an_older_normal_liver_panel_resolves_nothing(collected_offset, resolves):
    out = run(
        plan(), panel(T0 + H, 130), panel(T0 + 2 * H, 30, collected=T0 + H + collected_offset)
    )
    assert (
        ("alert.resolved", "hepatotoxicity", "transaminases_elevated") in kinds(out)
    ) is resolves


def test_an_older_worse_panel_upgrades_nothing():
    out = run(plan(), panel(T0 + H, 130), panel(T0 + 2 * H, 250, collected=T0))
    assert kinds(out) == [("alert.raised", "hepatotoxicity", "transaminases_elevated")]


def test_a_new_positive_on_an_acknowledged_alert_escalates_and_notifies_again():
    first = T0 + 5 * H
    out = run(
        plan("xr"),
        given(T0, 380, "injection"),
        screen(first, opioids=True),
        ack(first + H, alert="opioid_use_detected"),
        screen(first + 3 * D, opioids=True),
    )
    assert kinds(out) == [
        ("alert.raised", "opioid_use_detected", "urine_screen_positive"),
        ("alert.escalated", "opioid_use_detected", "urine_screen_positive"),
    ]
    assert out[1][0] == z(first + 3 * D)


def test_a_new_positive_while_an_escalation_is_pending_adds_nothing():
    first = T0 + 5 * H
    out = run(plan(), given(T0), screen(first, opioids=True), screen(first + 2 * H, opioids=True))
    assert kinds(out) == [("alert.raised", "opioid_use_detected", "urine_screen_positive")]


@pytest.mark.parametrize(
    "after_stop, alerted", [(60 * D - timedelta(minutes=1), True), (60 * D, False)]
)
def test_positive_screens_within_60_days_after_a_stop(after_stop, alerted):
    stopped_at = T0 + H
    collected = stopped_at + after_stop
    out = run(
        plan(), given(T0), stop(stopped_at), ack(stopped_at + H), screen(collected, opioids=True)
    )
    assert ("opioid_use_detected" in [a for _, a in raised(out)]) is alerted


@pytest.mark.parametrize("fentanyl_after, resolves", [(None, False), (False, True)])
def test_a_fentanyl_positive_resolves_only_on_a_screen_that_tested_for_it(fentanyl_after, resolves):
    out = run(
        plan(),
        given(T0),
        screen(T0 + H, fentanyl=True),
        screen(T0 + 2 * D, fentanyl=fentanyl_after),
    )
    assert raised(out) == [(z(T0 + H), "opioid_use_detected")]
    assert (("alert.resolved", "opioid_use_detected", "urine_screen_positive") in kinds(out)) is (
        resolves
    )


# --- hepatotoxicity upgrade ------------------------------------------------------------------


@pytest.mark.parametrize("acked, escalates", [(False, True), (True, False)])
def test_an_upgraded_liver_alert_escalates_like_a_high_one(acked, escalates):
    upgraded = T0 + 5 * D
    lines = [plan(), panel(T0, 130), ack(T0 + H, alert="hepatotoxicity"), panel(upgraded, 210)]
    if acked:
        lines.append(ack(upgraded + H, alert="hepatotoxicity"))
    out = run(*lines, clock(upgraded + 24 * H))
    assert kinds(out)[:2] == [
        ("alert.raised", "hepatotoxicity", "transaminases_elevated"),
        ("alert.escalated", "hepatotoxicity", "transaminases_elevated"),
    ]
    assert (len(kinds(out)) == 3) is escalates
    if escalates:
        assert out[2][0] == z(upgraded + 24 * H)


# --- holds and procedures -------------------------------------------------------------------


def test_tolerance_lost_after_hold_is_raised_from_p1_and_ends_with_restored_blockade():
    p1 = T0 + 5 * D
    resumed = p1 + 10 * D
    new_plan = plan().replace(z(T0 - H), z(resumed)).replace('"e', '"n')
    new_plan = new_plan.replace('"start_date": "2026-03-02"', '"start_date": "2026-03-17"')
    out = run(
        plan("xr"),
        given(T0, 380, "injection"),
        reinduction(p1),
        ack(p1 + H, alert="overdose_risk"),
        new_plan,
        given(resumed + H),
    )
    assert kinds(out) == [
        ("alert.raised", "overdose_risk", "tolerance_lost_after_hold"),
        ("alert.resolved", "overdose_risk", "tolerance_lost_after_hold"),
    ]
    assert (out[0][0], out[1][0]) == (z(p1), z(resumed + H))


@pytest.mark.parametrize("days, resolved", [(59, False), (60, True)])
def test_tolerance_lost_after_hold_lasts_60_days(days, resolved):
    p1 = T0 + 5 * D
    out = run(
        plan("xr"), given(T0, 380, "injection"), reinduction(p1), ack(p1 + H), clock(p1 + days * D)
    )
    assert (("alert.resolved", "overdose_risk", "tolerance_lost_after_hold") in kinds(out)) is (
        resolved
    )


@pytest.mark.parametrize(
    "given_at, procedure_day, alerted",
    [
        # London in March is UTC: a 09:00 dose blocks until 09:00 the next day
        (T0, T0.date(), True),
        (T0, (T0 + D).date(), True),  # still blocked at 00:00 on that day
        (T0 - 9 * H, (T0 + D).date(), False),  # blockade ends at 00:00 exactly
        (T0 - 9 * H + timedelta(minutes=1), (T0 + D).date(), True),
    ],
)
def test_blockade_at_procedure_when_a_recorded_dose_still_blocks_that_day(
    given_at, procedure_day, alerted
):
    recorded = line(T0, "ntx.dose.administered.v1", administered_at=z(given_at), dose_mg=50)
    out = run(plan(), recorded, procedure(T0 + H, procedure_day))
    assert ("blockade_at_procedure" in [a for _, a in raised(out)]) is alerted


# London moves to BST on 29 March: the 28 days end at 01:00 local on day 28 (30 March)
@pytest.mark.parametrize("days_ahead, alerted", [(27, True), (28, True), (29, False)])
def test_blockade_at_procedure_after_an_injection(days_ahead, alerted):
    injected = T0.replace(hour=0)  # blocks until 00:00 UTC on day 28
    recorded = line(T0, "ntx.injection.administered.v1", administered_at=z(injected), dose_mg=380)
    out = run(plan("xr"), recorded, procedure(T0, (T0 + days_ahead * D).date()))
    assert ("blockade_at_procedure" in [a for _, a in raised(out)]) is alerted


def test_blockade_at_procedure_resolves_once_the_procedure_day_is_over():
    out = run(
        plan(),
        given(T0),
        procedure(T0 + H, (T0 + D).date()),
        ack(T0 + 2 * H, alert="blockade_at_procedure"),
        reinduction(T0 + 2 * D),
    )
    assert kinds(out)[:2] == [
        ("alert.raised", "blockade_at_procedure", "covered_on_procedure_day"),
        ("alert.resolved", "blockade_at_procedure", "covered_on_procedure_day"),
    ]


# --- time rules -------------------------------------------------------------------------------


def test_an_alert_caused_by_a_back_dated_record_happens_when_it_arrives():
    """A dose recorded five days late: its lapse moment (dose + 24 h + 48 h) passed
    before the record existed, so the lapse is raised on arrival, in time order."""
    arrives = T0 + 5 * D
    out = run(
        plan(),
        line(arrives, "ntx.dose.administered.v1", administered_at=z(T0), dose_mg=50),
        clock(arrives + H),
    )
    assert raised(out) == [(z(arrives), "overdose_risk")]


def test_output_is_in_time_order():
    out = run(
        plan(),
        dose_due(T0),
        line(T0 + 3 * D, "ntx.dose.administered.v1", administered_at=z(T0 - D), dose_mg=50),
        screen(T0 + 3 * D + H, opioids=True),
        clock(T0 + 6 * D),
    )
    times = [t for t, *_ in out]
    assert times == sorted(times) and len(out) >= 3


@pytest.mark.parametrize(
    "ahead, ok", [(timedelta(minutes=5), True), (timedelta(minutes=5, seconds=1), False)]
)
def test_replay_refuses_a_recorded_time_more_than_5_minutes_ahead(ahead, ok):
    text = [plan(), line(T0, "ntx.dose.administered.v1", administered_at=z(T0 + ahead), dose_mg=50)]
    if ok:
        assert list(replay_lines(text)) == []
    else:
        with pytest.raises(ReplayError, match="line 2: data.administered_at"):
            list(replay_lines(text))


@pytest.mark.parametrize("mg", [400, 380, 75])
def test_replay_refuses_implausible_oral_doses(mg):
    with pytest.raises(ReplayError, match="line 2: data.dose_mg"):
        list(replay_lines([plan(), given(T0, mg)]))


def test_replay_refuses_times_past_the_calendar():
    """Named, never a traceback: a deadline past year 9999 cannot be computed, and
    such a due time is also outside the plausible window of the event contracts."""
    late = '{"at": "9999-12-31T23:00:00Z", "type": "ntx.dose.due.v1", "id": "x", "data": {"patient_id": "p", "due_utc": "9999-12-31T23:00:00Z", "due_local": "9999-12-31T23:00", "dose_mg": 50}}'
    with pytest.raises(ReplayError, match=r"line 1: (at|data\.due_utc): "):
        list(replay_lines([late]))


def test_a_dose_recorded_since_the_new_plans_start_restores_blockade_when_the_plan_arrives():
    """Plans and doses travel on different topics: the resumed patient's first dose
    may reach the alerts service before the new plan does."""
    resumed = T0 + 5 * D
    new_plan = plan().replace(z(T0 - H), z(resumed + 2 * H)).replace('"e', '"m')
    new_plan = new_plan.replace('"start_date": "2026-03-02"', '"start_date": "2026-03-07"')
    out = run(plan(), given(T0), stop(T0 + H), ack(T0 + 2 * H), given(resumed + H), new_plan)
    assert kinds(out) == [
        ("alert.raised", "overdose_risk", "discontinued"),
        ("alert.resolved", "overdose_risk", "discontinued"),
    ]
    assert out[-1][0] == z(resumed + 2 * H)
    before_start = run(
        plan(), given(T0), stop(T0 + H), ack(T0 + 2 * H), given(resumed - D), new_plan
    )
    assert kinds(before_start) == [("alert.raised", "overdose_risk", "discontinued")]
