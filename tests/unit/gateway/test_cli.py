"""``ntx fhir translate examples/fhir/*.json`` prints the expected events, and
``ntx cds evaluate`` gives the three card kinds; bad input exits 2 naming the path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main
from shared.envelope import Envelope, typed

EXAMPLES = Path(__file__).parents[3] / "examples" / "fhir"
EXPECTED = {
    "intake_bundle.json": ["ntx.intake.requested.v1"],
    "liver_panel.json": ["ntx.lab.resulted.v1"],
    "medication_administration_not_done.json": ["ntx.dose.not_given.v1"],
    "medication_administration_xr.json": ["ntx.injection.administered.v1"],
    "planned_surgery.json": ["ntx.procedure.scheduled.v1"],
    "subscription_notification.json": ["ntx.dose.administered.v1"],
    "treatment_stopped.json": ["ntx.treatment.stopped.v1"],
    "urine_screen.json": ["ntx.uds.resulted.v1"],
}
DATA = {
    "liver_panel.json": {
        "collected_at": "2026-11-18T07:45:00Z",
        "alt": 120.3,
        "ast": 65,
        "alt_uln": 40.1,
        "ast_uln": 40,
    },
    "medication_administration_xr.json": {
        "administered_at": "2026-11-20T10:15:00Z",
        "dose_mg": 380,
    },
    "medication_administration_not_done.json": {
        "due_utc": "2026-11-21T14:00:00Z",
        "recorded_at": "2026-11-21T14:40:00Z",
        "kind": "dose",
        "reason": "patient_refused",
    },
    "planned_surgery.json": {"date": "2027-01-14", "requires_opioid_analgesia": True},
    "subscription_notification.json": {"administered_at": "2026-11-23T09:02:00Z", "dose_mg": 50},
    "treatment_stopped.json": {"stopped_at": "2026-11-25T22:00:00Z", "reason": "sct:266710000"},
    "urine_screen.json": {
        "collected_at": "2026-11-22T08:30:00Z",
        "opioids_detected": False,
        "fentanyl_detected": False,
    },
}


def test_every_example_is_expected():
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) == sorted(EXPECTED)


def test_translate_examples_prints_the_expected_events_one_json_a_line(capsys):
    paths = sorted(EXAMPLES.glob("*.json"))
    assert main(["fhir", "translate", *map(str, paths)]) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [e["type"] for e in events] == [t for p in paths for t in EXPECTED[p.name]]
    for path, event in zip(paths, events, strict=True):
        typed(Envelope.model_validate_json(json.dumps(event)))  # every NTX consumer accepts it
        want = DATA.get(path.name)
        if want is not None:
            assert {k: v for k, v in event["data"].items() if k != "patient_id"} == want
    same_patient = {
        e["subject"]
        for e, p in zip(events, paths, strict=True)
        if p.name
        in (
            "medication_administration_xr.json",
            "liver_panel.json",
            "urine_screen.json",
            "planned_surgery.json",
        )
    }
    assert len(same_patient) == 1  # one pseudonym per patient across files
    assert "MRN-" not in captured.out and "Traceback" not in captured.err


def test_translate_is_deterministic_in_its_event_ids(capsys):
    path = str(EXAMPLES / "liver_panel.json")
    main(["fhir", "translate", path])
    main(["fhir", "translate", path])
    first, second = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert first == second


@pytest.mark.parametrize(
    "name, indicator", [("accepted", "info"), ("deferred", "warning"), ("rejected", "critical")]
)
def test_cds_evaluate_gives_the_three_card_kinds(name, indicator, capsys):
    path = EXAMPLES / "cds" / f"order_sign_{name}.json"
    assert main(["cds", "evaluate", str(path), "--as-of", "2026-11-24"]) == 0
    (card,) = json.loads(capsys.readouterr().out)["cards"]
    assert card["indicator"] == indicator


@pytest.mark.parametrize(
    "body, words",
    [
        ("{", "invalid input: $: not valid JSON"),
        (
            '{"resourceType": "MedicationAdministration", "status": "completed"}',
            "invalid input: MedicationAdministration.subject",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_path(tmp_path, capsys, body, words):
    path = tmp_path / "bad.json"
    path.write_text(body)
    assert main(["fhir", "translate", str(path)]) == 2
    assert main(["cds", "evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_missing_file_and_bad_as_of(capsys):
    assert main(["fhir", "translate", "/nonexistent.json"]) == 2
    assert (
        main(
            ["cds", "evaluate", str(EXAMPLES / "cds" / "order_sign_accepted.json"), "--as-of", "x"]
        )
        == 2
    )
    assert "--as-of" in capsys.readouterr().err
