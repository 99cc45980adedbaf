"""Stored documents load through their upcasters (DESIGN.md §5 r2, issue 14): a
fixture row of every version of each document under ``tests/fixtures/stored/`` loads;
the current version's fixture is exactly the current shape, so a change of a stored
model fails here until it bumps ``schema_version``, adds an upcaster and a fixture."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from services.alerts.domain.engine import Timer, on_timer
from services.alerts.domain.state import STORED as ALERT_STATE
from services.intake.domain.stored import STORED as INTAKE_REQUEST
from services.intake.domain.stored import stored_json
from services.scheduler.domain.state import STORED as PLAN_STATE
from shared.events import IntakeRequested
from shared.stored import StoredDocumentError, VersionedDocument
from tests.unit.alerts.test_deliveries import (
    T0,
    apply,
    escalations,
    outcome_line,
    raised_critical,
    requests,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stored"
DOCUMENTS: dict[str, VersionedDocument] = {
    "alert_state": ALERT_STATE,
    "plan_state": PLAN_STATE,
    "intake_request": INTAKE_REQUEST,
}
ROWS = sorted(FIXTURES.glob("*/*.json"))
CHANGED = (
    "the stored shape of {name} changed: bump its schema_version, add an upcaster from"
    " the version before and a fixture of the new version (tests/fixtures/stored/{name}/)"
)


def load(name: str, version: str):  # type: ignore[no-untyped-def]
    return DOCUMENTS[name].load((FIXTURES / name / f"{version}.json").read_text())


def test_every_fixture_belongs_to_a_stored_document():
    assert ROWS and {p.parent.name for p in ROWS} == set(DOCUMENTS)


@pytest.mark.parametrize("path", ROWS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_row_loads_through_its_upcaster(path):
    document = DOCUMENTS[path.parent.name]
    loaded = document.load(path.read_text())
    assert loaded.schema_version == document.version


@pytest.mark.parametrize("name", DOCUMENTS)
def test_each_document_keeps_rows_of_version_1_and_of_the_current_version(name):
    versions = {p.stem.split("_")[0] for p in (FIXTURES / name).glob("*.json")}
    assert {"v1", f"v{DOCUMENTS[name].version}"} <= versions


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_models_version_is_the_end_of_its_upcaster_chain(name):
    document = DOCUMENTS[name]
    assert document.model.model_fields["schema_version"].default == document.version


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_current_fixture_is_exactly_the_current_shape(name):
    current = f"v{DOCUMENTS[name].version}"
    raw = json.loads((FIXTURES / name / f"{current}.json").read_text())
    again = json.loads(load(name, current).model_dump_json())
    assert again == raw, CHANGED.format(name=name)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_an_unversioned_row_is_version_1_and_means_the_same(name):
    assert load(name, "v1") == load(name, "v2")


@pytest.mark.parametrize("coverage, dosed", [("2026-03-05T09:10:00Z", True), (None, False)])
def test_a_revision_1_alert_state_with_coverage_was_dosed_under_its_plan(coverage, dosed):
    """Revision 1 had no ``dosed_since_plan``: a patient with recorded coverage is not
    taken for one who never started; one with none is."""
    row = json.loads((FIXTURES / "alert_state" / "v1_revision1.json").read_text())
    state = ALERT_STATE.load(json.dumps({**row, "coverage_until": coverage}))
    assert state.dosed_since_plan is dosed
    assert state.timezone == "UTC" and state.declined == [] and not state.fentanyl_alerted


def test_an_unversioned_revision_2_alert_state_keeps_what_it_says():
    row = json.loads((FIXTURES / "alert_state" / "v1.json").read_text())
    state = ALERT_STATE.load(json.dumps({**row, "dosed_since_plan": False}))
    assert state.dosed_since_plan is False and state.coverage_until is not None


def test_a_revision_1_plan_state_loads_with_the_revision_2_defaults():
    state = load("plan_state", "v1_revision1")
    assert state.plan.mwf_step_days == 7  # the Mon/Wed/Fri step-up default
    assert state.lft_monthly_from is None and state.reinduction_not_before is None
    assert state.suspended_after == date(2026, 4, 14)


def test_a_revision_1_intake_request_loads_and_is_a_request():
    request = load("intake_request", "v1_revision1")
    assert isinstance(request, IntakeRequested)
    assert request.clinician_override is None
    assert request.urine_drug_screen is not None
    assert request.urine_drug_screen.fentanyl_detected is None  # not tested


def test_a_stored_request_round_trips_exactly():
    request = load("intake_request", "v2")
    again = INTAKE_REQUEST.load(stored_json(request))
    assert again == request and json.loads(stored_json(request))["schema_version"] == 2


@pytest.mark.parametrize("name", DOCUMENTS)
@pytest.mark.parametrize("version", [0, "next", "2", None, 2.0])
def test_a_version_no_upcaster_knows_is_refused_by_name(name, version):
    row = json.loads((FIXTURES / name / "v2.json").read_text())
    if version == "next":  # one past the newest
        version = DOCUMENTS[name].version + 1
    with pytest.raises(StoredDocumentError, match="schema_version"):
        DOCUMENTS[name].load(json.dumps({**row, "schema_version": version}))


@pytest.mark.parametrize("escalated", [False, True])
def test_a_version_2_open_alert_has_its_latest_round_derived_again(escalated):
    """Version 2 kept no notification rounds: the upcaster derives the raise's requests
    (or, once escalated by time, the escalation's), so outcomes for an alert open
    across the upgrade still count, and a failed round escalates."""
    state, reqs = raised_critical(notify_patient=True)
    if escalated:
        alert = state.open_alerts["overdose_risk:discontinued"]
        payload = {"alert": "overdose_risk:discontinued", "alert_id": alert.alert_id}
        out = on_timer(state, Timer("escalate:x", T0, "escalate", payload), T0)
        state, reqs = out.state, requests(out)
    row = json.loads(state.model_dump_json())
    for alert in row["open_alerts"].values():
        del alert["notified"], alert["undelivered_escalations"]
    loaded = ALERT_STATE.load(json.dumps({**row, "schema_version": 2}))
    assert loaded == state
    for r in reqs:
        out = apply(loaded, outcome_line(r))
        loaded = out.state
    assert len(escalations([out])) == 1
