"""Alert rules (DESIGN.md §4.3) at the boundary minute, coverage, lifecycle, consent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from services.alerts.cli import replay_lines
from services.alerts.domain.engine import Timer, handle, hepatotoxicity_severity, on_timer
from services.alerts.domain.settings import DEFAULT_SETTINGS
from services.alerts.replay import ReplayError
from shared import events as ev

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
P = "p-1"
_ids = iter(range(10**6))


def z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def line(at: datetime, type_: str, **data) -> str:
    if type_ == "clock":
        return json.dumps({"at": z(at), "type": "clock"})
    return json.dumps(
        {"at": z(at), "type": type_, "id": f"e{next(_ids)}", "data": {"patient_id": P, **data}}
    )


def plan(formulation="oral", notify_patient=False, notify_external=False) -> str:
    return line(
        T0 - timedelta(hours=1),
        "ntx.plan.created.v1",
        timezone="Europe/London",
        formulation=formulation,
        oral_regimen="daily" if formulation == "oral" else None,
        induction_days=1 if formulation == "oral" else None,
        dose_time="09:00",
        start_date="2026-03-02",
        consent={"notify_patient": notify_patient, "notify_external": notify_external},
    )


def dose_due(t: datetime, mg: int = 50, arrives: datetime | None = None) -> str:
    return line(
        arrives or t,
        "ntx.dose.due.v1",
        due_utc=z(t),
        due_local=t.strftime("%Y-%m-%dT%H:%M"),
        dose_mg=mg,
    )


def given(t: datetime, mg: int = 50, kind: str = "dose") -> str:
    return line(t, f"ntx.{kind}.administered.v1", administered_at=z(t), dose_mg=mg)


def injection_due(t: datetime, arrives: datetime | None = None) -> str:
    return line(
        arrives or t,
        "ntx.injection.due.v1",
        due_utc=z(t),
        due_local=t.strftime("%Y-%m-%dT%H:%M"),
        dose_mg=380,
        requires_uds=True,
    )


def run(*lines: str) -> list[tuple[str, str, str, str]]:
    return [(o["at"], o["type"], o["alert"], o["reason"]) for o in replay_lines(lines)]


def raised(out) -> list[tuple[str, str]]:
    return [(at, alert) for at, kind, alert, _ in out if kind == "alert.raised"]


@pytest.mark.parametrize("minutes, alerted", [(11 * 60 + 59, False), (12 * 60, True)])
def test_missed_dose_at_12_hours(minutes, alerted):
    out = run(plan(), dose_due(T0), line(T0 + timedelta(minutes=minutes), "clock"))
    assert (raised(out) == [(z(T0 + timedelta(hours=12)), "missed_dose")]) is alerted


def test_dose_recorded_at_the_deadline_is_on_time():
    assert run(plan(), dose_due(T0), given(T0 + timedelta(hours=12))) == []


@pytest.mark.parametrize("minutes, alerted", [(71 * 60 + 59, False), (72 * 60, True)])
def test_missed_injection_at_72_hours(minutes, alerted):
    out = run(plan("xr"), injection_due(T0), line(T0 + timedelta(minutes=minutes), "clock"))
    assert ("missed_injection" in [a for _, a in raised(out)]) is alerted


@pytest.mark.parametrize(
    "formulation, mg, kind, coverage",
    [
        ("oral", 25, "dose", timedelta(hours=24)),
        ("oral", 50, "dose", timedelta(hours=24)),
        ("oral", 100, "dose", timedelta(hours=48)),
        ("oral", 150, "dose", timedelta(hours=72)),
        ("xr", 380, "injection", timedelta(days=28)),
    ],
)
@pytest.mark.parametrize("early", [True, False])
def test_blockade_lapse_boundary(formulation, mg, kind, coverage, early):
    grace = timedelta(hours=48) if formulation == "oral" else timedelta(days=7)
    lapse_at = T0 + coverage + grace
    probe = lapse_at - timedelta(minutes=1) if early else lapse_at
    out = run(plan(formulation), given(T0, mg, kind), line(probe, "clock"))
    lapses = [a for a in raised(out) if a[1] == "overdose_risk"]
    assert lapses == ([] if early else [(z(lapse_at), "overdose_risk")])


def test_coverage_is_elapsed_time_across_dst():
    # London springs forward on 29 March 2026 at 01:00 UTC: 24 h coverage stays 24 h
    dose_at = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)
    out = run(plan(), given(dose_at), line(dose_at + timedelta(days=4), "clock"))
    assert raised(out) == [(z(dose_at + timedelta(hours=72)), "overdose_risk")]


def test_one_open_alert_per_code_and_repeated_input_raises_once():
    due1 = dose_due(T0)
    out = run(
        plan(),
        due1,
        due1,
        dose_due(T0 + timedelta(days=1)),
        line(T0 + timedelta(days=1, hours=13), "clock"),
    )
    assert [a for _, a in raised(out)] == ["missed_dose"]


def test_escalation_after_1h_critical_and_24h_high_unless_acknowledged():
    stop = T0 + timedelta(hours=2)
    out = run(
        plan(),
        given(T0),
        line(stop, "ntx.treatment.stopped.v1", stopped_at=z(stop), reason="x"),
        line(stop + timedelta(minutes=59), "clock"),
        line(stop + timedelta(hours=1), "clock"),
    )
    assert [k for _, k, _, _ in out] == ["alert.raised", "alert.escalated"]
    acked = run(
        plan(),
        line(stop, "ntx.treatment.stopped.v1", stopped_at=z(stop), reason="x"),
        line(
            stop + timedelta(minutes=30),
            "ntx.alert.acknowledged.v1",
            alert="overdose_risk",
            by="rn",
        ),
        line(stop + timedelta(hours=5), "clock"),
    )
    assert [k for _, k, _, _ in acked] == ["alert.raised"]
    positive = T0 + timedelta(hours=3)
    high = run(
        plan(),
        given(T0),
        line(positive, "ntx.uds.resulted.v1", collected_at=z(positive), opioids_detected=True),
        line(positive + timedelta(hours=23, minutes=59), "clock"),
        line(positive + timedelta(hours=24), "clock"),
    )
    assert [k for _, k, a, _ in high if a == "opioid_use_detected"] == [
        "alert.raised",
        "alert.escalated",
    ]


def test_held_doses_are_never_missed_and_no_lapse_during_hold():
    held = line(
        T0 + timedelta(days=1),
        "ntx.dose.held.v1",
        due_utc=z(T0 + timedelta(days=1)),
        due_local="2026-03-03T09:00",
        dose_mg=50,
        reason="surgery_hold",
    )
    out = run(plan(), given(T0), held, line(T0 + timedelta(days=4), "clock"))
    assert out == []


def test_no_lapse_while_suspended_for_reinduction():
    """The suspension raises tolerance_lost_after_hold instead (DESIGN.md §4.3 r2)."""
    notice = line(T0 + timedelta(hours=20), "ntx.reinduction.required.v1", due_local="2026-03-03")
    out = run(plan(), given(T0), notice, line(T0 + timedelta(days=10), "clock"))
    assert [(k, r) for _, k, _, r in out] == [
        ("alert.raised", "tolerance_lost_after_hold"),
        ("alert.escalated", "tolerance_lost_after_hold"),
    ]


def test_post_stop_risk_resolves_after_60_days():
    stop = T0 + timedelta(days=1)
    out = run(
        plan(),
        line(stop, "ntx.treatment.stopped.v1", stopped_at=z(stop), reason="x"),
        line(
            stop + timedelta(minutes=5), "ntx.alert.acknowledged.v1", alert="overdose_risk", by="rn"
        ),
        line(stop + timedelta(days=59, hours=23), "clock"),
        line(stop + timedelta(days=60), "clock"),
    )
    assert [(k, r) for _, k, _, r in out] == [
        ("alert.raised", "discontinued"),
        ("alert.resolved", "discontinued"),
    ]
    assert out[-1][0] == z(stop + timedelta(days=60))


def test_late_administration_resolves_the_alert_it_caused():
    out = run(
        plan(),
        dose_due(T0),
        line(T0 + timedelta(hours=13), "clock"),
        given(T0 + timedelta(hours=14)),
    )
    assert [k for _, k, _, _ in out] == ["alert.raised", "alert.resolved"]


def test_events_after_stop_do_not_crash_or_alert():
    stop = T0 + timedelta(hours=1)
    out = run(
        plan(),
        line(stop, "ntx.treatment.stopped.v1", stopped_at=z(stop), reason="x"),
        line(
            stop + timedelta(minutes=1), "ntx.alert.acknowledged.v1", alert="overdose_risk", by="rn"
        ),
        dose_due(T0 + timedelta(days=1)),
        line(T0 + timedelta(days=3), "clock"),
    )
    assert [a for _, a in raised(out)] == ["overdose_risk"]


@pytest.mark.parametrize(
    "alt, uln, severity",
    [
        ("120.3", "40.1", "warning"),
        ("120.2", "40.1", None),
        ("200.5", "40.1", "high"),
        ("200.4", "40.1", "warning"),
    ],
)
def test_hepatotoxicity_thresholds_are_exact(alt, uln, severity):
    lab = ev.LabResulted(
        patient_id=P,
        collected_at=T0,
        alt=Decimal(alt),
        ast=Decimal(1),
        alt_uln=Decimal(uln),
        ast_uln=Decimal(40),
    )
    assert hepatotoxicity_severity(lab) == severity


@pytest.mark.parametrize(
    "notify_patient, notify_external, audiences",
    [
        (False, False, ["care_team"]),
        (True, False, ["care_team", "patient"]),
        (False, True, ["care_team", "external"]),
        (True, True, ["care_team", "patient", "external"]),
    ],
)
def test_notifications_follow_consent_and_carry_no_clinical_values(
    notify_patient, notify_external, audiences
):
    state = None
    for type_, data in [
        (
            "ntx.plan.created.v1",
            ev.TreatmentPlan.model_validate_json(
                json.dumps(
                    {
                        "patient_id": P,
                        "timezone": "UTC",
                        "formulation": "xr",
                        "oral_regimen": None,
                        "induction_days": None,
                        "dose_time": "09:00",
                        "start_date": "2026-03-02",
                        "consent": {
                            "notify_patient": notify_patient,
                            "notify_external": notify_external,
                        },
                    }
                )
            ),
        ),
        (
            "ntx.treatment.stopped.v1",
            ev.TreatmentStopped(patient_id=P, stopped_at=T0, reason="moved away"),
        ),
    ]:
        out = handle(state, type_, data, "cause-1", T0)
        state = out.state
    notes = [e.data for e in out.emits if e.type == "ntx.notification.requested.v1"]
    assert [n.audience for n in notes] == audiences
    assert all(n.offer_naloxone for n in notes)
    assert all(
        set(n.model_dump())
        == {"patient_id", "alert_id", "alert", "severity", "audience", "offer_naloxone"}
        for n in notes
    )
    again = handle(
        state.model_copy(update={"stopped_at": None, "open_alerts": {}}),
        "ntx.treatment.stopped.v1",
        ev.TreatmentStopped(patient_id=P, stopped_at=T0, reason="moved away"),
        "cause-1",
        T0,
    )
    assert [e.id for e in again.emits] == [e.id for e in out.emits]  # deterministic ids


def test_settings_coverage_of_each_plausible_dose():
    assert DEFAULT_SETTINGS.coverage(25, injection=False) == timedelta(hours=24)
    assert DEFAULT_SETTINGS.coverage(150, injection=False) == timedelta(hours=72)
    assert DEFAULT_SETTINGS.coverage(380, injection=True) == timedelta(days=28)


EXAMPLES = Path(__file__).parents[3] / "examples" / "replay"
EXPECTED = {
    "adherent_month.jsonl": [],
    "missed_dose.jsonl": [("alert.raised", "missed_dose"), ("alert.resolved", "missed_dose")],
    "missed_injection.jsonl": [
        ("alert.raised", "missed_injection"),
        ("alert.escalated", "missed_injection"),
        ("alert.resolved", "missed_injection"),
    ],
    "blockade_lapsed.jsonl": [
        ("alert.raised", "missed_dose"),
        ("alert.raised", "overdose_risk"),
        ("alert.escalated", "overdose_risk"),
        ("alert.resolved", "missed_dose"),
        ("alert.resolved", "overdose_risk"),
    ],
    "discontinued.jsonl": [("alert.raised", "overdose_risk"), ("alert.resolved", "overdose_risk")],
    "opioid_use_detected.jsonl": [
        ("alert.raised", "opioid_use_detected"),
        ("alert.escalated", "opioid_use_detected"),
        ("alert.resolved", "opioid_use_detected"),
    ],
    "hepatotoxicity.jsonl": [
        ("alert.raised", "hepatotoxicity"),
        ("alert.escalated", "hepatotoxicity"),
        ("alert.resolved", "hepatotoxicity"),
    ],
    "deadline_instant.jsonl": [("alert.raised", "missed_dose")],
    "adoption.jsonl": [("alert.raised", "missed_dose"), ("alert.resolved", "missed_dose")],
    "never_started.jsonl": [
        ("alert.raised", "missed_dose"),
        ("alert.raised", "overdose_risk"),
        ("alert.escalated", "overdose_risk"),
    ],
    "not_given.jsonl": [("alert.raised", "missed_dose"), ("alert.resolved", "missed_dose")],
    "episodes.jsonl": [
        ("alert.raised", "overdose_risk"),
        ("alert.resolved", "overdose_risk"),
        ("alert.raised", "overdose_risk"),
        ("alert.escalated", "overdose_risk"),
    ],
    "specimen_order.jsonl": [
        ("alert.raised", "opioid_use_detected"),
        ("alert.escalated", "opioid_use_detected"),
        ("alert.resolved", "opioid_use_detected"),
    ],
    "upgrade.jsonl": [
        ("alert.raised", "hepatotoxicity"),
        ("alert.escalated", "hepatotoxicity"),
        ("alert.escalated", "hepatotoxicity"),
        ("alert.resolved", "hepatotoxicity"),
    ],
    "tolerance_lost_after_hold.jsonl": [
        ("alert.raised", "overdose_risk"),
        ("alert.escalated", "overdose_risk"),
    ],
    "blockade_at_procedure.jsonl": [
        ("alert.raised", "blockade_at_procedure"),
        ("alert.resolved", "blockade_at_procedure"),
        ("alert.raised", "overdose_risk"),
    ],
    "notifications_failed.jsonl": [
        ("alert.raised", "overdose_risk"),
        ("alert.escalated", "overdose_risk"),  # notifications_failed, at once
        ("alert.escalated", "overdose_risk"),  # unacknowledged after 1 h
        ("alert.resolved", "overdose_risk"),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_replay_examples(name):
    out = list(replay_lines((EXAMPLES / name).read_text().splitlines()))
    assert [(o["type"], o["alert"]) for o in out] == EXPECTED[name]


@pytest.mark.parametrize(
    "text, field",
    [
        ('{"at": "2026-03-02T09:00:00Z", "type": "ntx.nope.v1", "id": "1", "data": {}}', "type"),
        ('{"at": "yesterday", "type": "clock"}', "at"),
        (
            '{"at": "2026-03-02T09:00:00Z", "type": "ntx.dose.due.v1", "id": "1", "data": {"patient_id": "p", "due_utc": "2026-03-02T09:00:00Z", "due_local": "2026-03-02T09:00", "dose_mg": "x"}}',
            "data.dose_mg",
        ),
    ],
)
def test_bad_replay_lines_name_the_field(text, field):
    with pytest.raises(ReplayError, match=f"line 1: {field}"):
        list(replay_lines([text]))


def test_lines_out_of_time_order_are_refused():
    with pytest.raises(ReplayError, match="line 2: at"):
        list(replay_lines([line(T0, "clock"), line(T0 - timedelta(minutes=1), "clock")]))


def test_cli_replay_exit_codes(tmp_path, capsys):
    from services.cli import main

    assert main(["alerts", "replay", str(EXAMPLES / "missed_dose.jsonl")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"at": "2026-03-02T09:00:00Z"}\n')
    assert main(["alerts", "replay", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "line 1: type" in err and "Traceback" not in err


def test_cli_replays_several_files_each_on_its_own(capsys):
    """``ntx alerts replay examples/replay/*.jsonl``: each file is its own replay (no
    state carried from one to the next), its alerts in file order."""
    from services.cli import main

    paths = sorted(EXAMPLES.glob("*.jsonl"))
    assert main(["alerts", "replay", *map(str, paths)]) == 0
    captured = capsys.readouterr()
    seen = [(x["type"], x["alert"]) for x in map(json.loads, captured.out.splitlines())]
    assert seen == [pair for p in paths for pair in EXPECTED[p.name]]
    assert captured.err.splitlines() == [f"==> {p} <==" for p in paths]


def test_administration_recorded_before_its_due_arrives_settles_it():
    """Dues and administrations travel on different topics: either may come first."""
    late = T0 + timedelta(minutes=30)
    assert (
        run(
            plan(),
            given(T0 + timedelta(minutes=20)),
            dose_due(T0, arrives=late),
            line(T0 + timedelta(hours=13), "clock"),
        )
        == []
    )
    out = run(
        plan("xr"),
        given(T0 + timedelta(minutes=5), 380, "injection"),
        injection_due(T0, arrives=late),
        line(T0 + timedelta(days=4), "clock"),
    )
    assert out == []


def test_an_early_dose_settles_only_one_due():
    out = run(
        plan(),
        given(T0 - timedelta(hours=1)),
        dose_due(T0),
        dose_due(T0 + timedelta(days=1)),
        line(T0 + timedelta(days=1, hours=12), "clock"),
    )
    assert [a for _, a in raised(out)] == ["missed_dose"]


def test_resuming_after_missed_days_is_not_missed_again():
    days = [T0 + timedelta(days=k) for k in range(6)]
    out = run(
        plan(),
        dose_due(days[0]),
        given(days[0]),
        dose_due(days[1]),
        dose_due(days[2]),  # two missed
        dose_due(days[3]),
        given(days[3] + timedelta(minutes=10)),
        dose_due(days[4]),
        given(days[4] + timedelta(minutes=10)),
        line(days[5], "clock"),
    )
    # coverage ended on day 1, so the blockade lapsed at day 3 09:00, ten minutes
    # before the patient resumed; after that, no due is reported missing again
    assert [(k, a) for _, k, a, _ in out] == [
        ("alert.raised", "missed_dose"),
        ("alert.raised", "overdose_risk"),
        ("alert.resolved", "missed_dose"),
        ("alert.resolved", "overdose_risk"),
    ]


@pytest.mark.parametrize("due_first", [True, False], ids=["due-first", "dose-first"])
def test_resuming_after_a_gap_in_either_arrival_order_is_not_missed_again(due_first):
    """Due events and administrations come on different topics; after a gap, the
    patient's resumed daily doses settle their own dues whichever arrives first."""
    days = [T0 + timedelta(days=k) for k in range(7)]
    lines = [plan(), dose_due(days[0]), given(days[0]), dose_due(days[1]), dose_due(days[2])]
    for day in days[3:6]:
        taken = day + timedelta(minutes=10)
        if due_first:
            lines += [dose_due(day), given(taken)]
        else:
            lines += [given(taken), dose_due(day, arrives=taken + timedelta(minutes=5))]
    out = run(*lines, line(days[6], "clock"))
    assert [(k, a) for _, k, a, _ in out] == [
        ("alert.raised", "missed_dose"),
        ("alert.raised", "overdose_risk"),
        ("alert.resolved", "missed_dose"),
        ("alert.resolved", "overdose_risk"),
    ]


def test_a_deadline_that_fires_after_a_later_dose_was_recorded_resolves_at_once():
    """A worker behind on its deadlines may handle the next day's dose first: the
    miss is still raised (it happened), and resolved, since the patient dosed since."""
    state = None
    for type_, data in (
        ("ntx.plan.created.v1", _plan_model()),
        ("ntx.dose.due.v1", _due_model(T0)),
    ):
        state = handle(state, type_, data, "id", T0).state
    late = T0 + timedelta(days=1, minutes=20)
    taken = ev.DoseAdministered(patient_id=P, administered_at=late, dose_mg=50)
    outcome = handle(state, "ntx.dose.administered.v1", taken, "id2", late)
    key = f"dose:{z(T0)}"
    deadline = Timer(f"missed:{key}", T0 + timedelta(hours=12), "missed_dose", {"outstanding": key})
    fired = on_timer(outcome.state, deadline, late)
    assert [(e.type, e.data.alert) for e in fired.emits if "alert." in e.type] == [
        ("ntx.alert.raised.v1", "missed_dose"),
        ("ntx.alert.resolved.v1", "missed_dose"),
    ]
    assert fired.state.open_alerts == {}


def _plan_model() -> ev.TreatmentPlan:
    return ev.TreatmentPlan.model_validate_json(json.dumps(json.loads(plan())["data"]))


def _due_model(t: datetime) -> ev.DoseDue:
    return ev.DoseDue.model_validate_json(json.dumps(json.loads(dose_due(t))["data"]))


def test_a_dose_that_passes_over_an_overdue_due_still_reports_it_missed():
    """A worker behind on its deadlines may handle the next dose first: the older due
    whose deadline passed is reported missed (the same alert its deadline would have
    raised) and resolved by this dose."""
    state = None
    day1 = T0 + timedelta(days=1)
    for type_, data in (
        ("ntx.plan.created.v1", _plan_model()),
        ("ntx.dose.due.v1", _due_model(T0)),
        ("ntx.dose.due.v1", _due_model(day1)),
    ):
        state = handle(state, type_, data, "id", day1).state
    taken = ev.DoseAdministered(
        patient_id=P, administered_at=day1 + timedelta(minutes=10), dose_mg=50
    )
    outcome = handle(state, "ntx.dose.administered.v1", taken, "id3", day1 + timedelta(minutes=10))
    alerts = [(e.type, e.data.alert) for e in outcome.emits if "alert." in e.type]
    assert alerts == [
        ("ntx.alert.raised.v1", "missed_dose"),
        ("ntx.alert.resolved.v1", "missed_dose"),
    ]
    assert outcome.state.outstanding == {} and outcome.state.open_alerts == {}
    key = f"dose:{z(T0)}"
    deadline = Timer(f"missed:{key}", T0 + timedelta(hours=12), "missed_dose", {"outstanding": key})
    by_deadline = on_timer(state, deadline, T0 + timedelta(hours=12))
    assert by_deadline.emits[0].data.alert_id == outcome.emits[0].data.alert_id
